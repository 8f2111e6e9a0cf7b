// Type-level tests of the public API, against the built package as a user imports it
// (run `npm run build` first).
import { expect } from 'tstyche'
import Fastify, { type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import revocableJwt, {
  AuthStoreUnavailableError,
  MemoryRefreshTokenStore,
  MemoryRevocationStore,
  TokenExpiredError,
  decideRotation,
  revocableJwtAuthenticate,
  revocableJwtCookieSession,
  revocableJwtIssuance,
  revocableJwtRefreshRoutes,
  revocableJwtRevocation,
  revocableJwtTokenVersions,
  type AccessTokenClaims,
  type AuthContext,
  type AuthHook,
  type CookieSessionOptions,
  type IssuedTokens,
  type RefreshTokenStore,
  type RevocableJwtOptions,
  type RevocationState,
  type RevocationStore,
  type RotationDecision,
  type RotationFacts,
  type SessionRecord,
  type SessionTokens,
  type TokenFacts
} from 'fastify-revocable-jwt'

const app = Fastify()

expect(revocableJwt).type.toBeAssignableTo<FastifyPluginAsync<RevocableJwtOptions>>()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32) })).type.not.toRaiseError()
expect(app.register(revocableJwt, {
  secret: 'x'.repeat(32),
  accessTokenTtl: '15m',
  refreshTokenTtl: 604800,
  cookie: { secure: false, path: '/api/auth', sameSite: 'lax' },
  routes: { sessions: false },
  maxSessions: 20,
  revocationStore: new MemoryRevocationStore(),
  refreshTokenStore: new MemoryRefreshTokenStore()
})).type.not.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), accessTokenTtl: true })).type.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), algorithm: 'none' })).type.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), unknownOption: 1 })).type.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), cookie: { sameSite: 'none' } })).type.toRaiseError()
expect(app.register(revocableJwt, {
  secret: 'x'.repeat(32),
  redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'app:' },
  accessTokenClaims: async (userId: string) => ({ role: userId === 'root' ? 'admin' : 'user' }),
  getTokenVersion: async () => 0,
  bumpTokenVersion: async () => 1
})).type.not.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), accessTokenClaims: () => 'admin' })).type.toRaiseError()

// Each plugin alone, with its own options only
expect(app.register(revocableJwtRevocation, { redis: 'redis://127.0.0.1:6379' })).type.not.toRaiseError()
expect(app.register(revocableJwtRevocation, { tokenClaims: (request: FastifyRequest) => request.user as { sub: string } })).type.not.toRaiseError()
expect(app.register(revocableJwtRevocation, { secret: 'x'.repeat(32) })).type.toRaiseError()
expect(app.register(revocableJwtTokenVersions, { getTokenVersion: () => 0, bumpTokenVersion: () => 1 })).type.not.toRaiseError()
expect(app.register(revocableJwtAuthenticate, { secret: 'x'.repeat(32), verifyCacheSize: 0 })).type.not.toRaiseError()
expect(app.register(revocableJwtAuthenticate, { refreshTokenTtl: '1d' })).type.toRaiseError()
expect(app.register(revocableJwtIssuance, { maxSessions: 10, cookie: { name: 'rt' } })).type.not.toRaiseError()
expect(app.register(revocableJwtRefreshRoutes, { logoutAll: false, allowedOrigins: ['https://app.example'] })).type.not.toRaiseError()

// The namespace: one decorator, typed members; no fastify.authenticate of ours
expect(app.revocableJwt.authenticate).type.toBe<AuthHook>()
expect(app.revocableJwt.checkRevocation).type.toBe<AuthHook>()
expect(app.get('/', { onRequest: [app.revocableJwt.authenticate] }, async () => 'ok')).type.not.toRaiseError()
expect(app).type.not.toHaveProperty('authenticate')
expect(app.revocableJwt.bumpTokenVersion('u')).type.toBe<Promise<number>>()
expect(app.revocableJwt.bumpTokenVersion(1)).type.toRaiseError()
expect(app.revocableJwt.revokeAccessToken({ sub: 'u', jti: 'j', exp: 1 })).type.toBe<Promise<void>>()
expect(app.revocableJwt.changeCredentials('u', async () => {})).type.toBe<Promise<number>>()
expect(app.revocableJwt.listSessions('u')).type.toBe<Promise<SessionRecord[]>>()
expect(app.revocableJwt.revocationStore).type.toBe<RevocationStore>()
expect(app.revocableJwt.refreshTokenStore).type.toBe<RefreshTokenStore>()
expect(app.revocableJwt.verifyAccessToken('t')).type.toBe<Promise<AccessTokenClaims>>()
expect(app.revocableJwt.accessTokens.ttlMs).type.toBe<number>()
app.revocableJwt.events.on('refreshTokenReused', (event) => {
  expect(event.sessionId).type.toBe<string>()
  expect(event.ip).type.toBe<string | null>()
})
app.revocableJwt.events.on('sessionRevoked', (event) => {
  expect(event.reason).type.toBe<'logout' | 'revoked' | 'reuse' | 'stale-version' | 'evicted'>()
})
expect(app.revocableJwt.events.on('noSuchEvent', () => {})).type.toRaiseError()

app.get('/me', async (request: FastifyRequest, reply: FastifyReply) => {
  expect(request.auth).type.toBe<AuthContext | null>()
  expect(request.auth?.claims.sub).type.toBe<string | undefined>()
  expect(reply.issueTokens({ id: 'u' })).type.toBe<Promise<IssuedTokens>>()
  expect(reply.issueTokens({ id: 'u', tokenVersion: 3 })).type.toBe<Promise<IssuedTokens>>()
  expect(reply.issueTokens({ id: 'u', claims: { role: 'admin' } })).type.toRaiseError()
  expect(reply.issueTokens({ id: 1 })).type.toRaiseError()
  expect(reply.clearRefreshCookie()).type.toBe<FastifyReply>()
  return null
})

// The cookie transport for server-rendered pages: registered by the app, hooks from a factory
expect(revocableJwtCookieSession).type.toBeAssignableTo<FastifyPluginAsync<CookieSessionOptions>>()
expect(app.register(revocableJwtCookieSession, {
  path: '/app',
  loginPath: '/app/login',
  allowedOrigins: ['https://app.example'],
  accessCookie: { name: 'at', sameSite: 'strict', secure: false },
  refreshCookie: { path: '/app', domain: 'example.com' }
})).type.not.toRaiseError()
expect(app.register(revocableJwtCookieSession, { accessCookie: { sameSite: 'none' } })).type.toRaiseError()
expect(app.register(revocableJwtCookieSession, { secret: 'x'.repeat(32) })).type.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), loginPath: '/login' })).type.toRaiseError()
expect(app.revocableJwt.cookieSession()).type.toBe<AuthHook>()
expect(app.revocableJwt.cookieSession({ onMissing: 'redirect', loginPath: '/app/login' })).type.toBe<AuthHook>()
expect(app.revocableJwt.cookieSession({ onMissing: 'continue' })).type.toBe<AuthHook>()
expect(app.revocableJwt.cookieSession({ onMissing: 'login' })).type.toRaiseError()
expect(app.revocableJwt.refuseCrossSite).type.toBe<AuthHook>()
expect(app.get('/app/account', { onRequest: app.revocableJwt.cookieSession({ onMissing: 'error' }) }, async () => 'ok')).type.not.toRaiseError()
app.post('/app/login', async (request: FastifyRequest, reply: FastifyReply) => {
  expect(app.revocableJwt.startCookieSession(reply, { id: 'u', tokenVersion: 0 })).type.toBe<Promise<{ userId: string, sessionId: string }>>()
  expect(app.revocableJwt.startCookieSession(reply, { id: 1 })).type.toRaiseError()
  expect(app.revocableJwt.endCookieSession(request, reply)).type.toBe<Promise<boolean>>()
  expect(app.revocableJwt.startSession(request, { id: 'u' })).type.toBe<Promise<SessionTokens>>()
  return null
})

// An app that decorates fastify.authenticate itself, as @fastify/jwt teaches, keeps its own type
declare module 'fastify' {
  interface FastifyInstance {
    authenticateOwn: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}
const own = Fastify()
await own.register(fastifyJwt, { secret: 'x'.repeat(32) })
own.decorate('authenticateOwn', async (request: FastifyRequest) => { await request.jwtVerify() })
expect(own.get('/p', { onRequest: [own.authenticateOwn, own.revocableJwt.checkRevocation] }, async () => 'ok')).type.not.toRaiseError()

// Stores: a custom adapter implements the interfaces; facts, not decisions
class CustomRevocation implements RevocationStore {
  async check (): Promise<RevocationState> { return { tokenRevoked: false, sessionRevoked: false, version: 0 } }
  async revokeToken (): Promise<void> {}
  async revokeSession (): Promise<void> {}
  async getTokenVersion (): Promise<number> { return 0 }
  async bumpTokenVersion (): Promise<number> { return 1 }
}
expect(new CustomRevocation()).type.toBeAssignableTo<RevocationStore>()
expect<{ check (): Promise<boolean> }>().type.not.toBeAssignableTo<RevocationStore>()
expect<RotationFacts>().type.toBeAssignableTo<TokenFacts>()
expect<RotationFacts>().type.not.toHaveProperty('outcome')
expect(decideRotation(null, { presented: 't', now: 0, graceMs: 0, currentVersion: 0, keepRotated: 64, derive: (t: string) => t, hash: (t: string) => t })).type.toBe<RotationDecision>()

// Errors carry their codes and statuses
expect(new TokenExpiredError().code).type.toBe<'TOKEN_EXPIRED'>()
expect(new AuthStoreUnavailableError().statusCode).type.toBe<503>()

// Adapters, each on its own subpath
import { Redis } from 'ioredis'
import { MongoClient } from 'mongodb'
import { RedisRefreshTokenStore, RedisRevocationStore } from 'fastify-revocable-jwt/redis'
import { MongoRefreshTokenStore } from 'fastify-revocable-jwt/mongodb'
expect(new RedisRevocationStore({ client: new Redis({ lazyConnect: true }) })).type.toBeAssignableTo<RevocationStore>()
expect(new RedisRefreshTokenStore({ client: new Redis({ lazyConnect: true }), keyPrefix: 'app:' })).type.toBeAssignableTo<RefreshTokenStore>()
expect(new RedisRevocationStore({})).type.toRaiseError()
expect(new MongoRefreshTokenStore({ client: new MongoClient('mongodb://127.0.0.1') })).type.toBeAssignableTo<RefreshTokenStore>()
import pg from 'pg'
import { PostgresRefreshTokenStore, PostgresRevocationStore, postgresSchema } from 'fastify-revocable-jwt/postgres'
const pool = new pg.Pool()
const pgRevocation = new PostgresRevocationStore({ pool })
expect(pgRevocation).type.toBeAssignableTo<RevocationStore>()
expect(new PostgresRefreshTokenStore({ pool, tokenVersionsOf: pgRevocation })).type.toBeAssignableTo<RefreshTokenStore>()
expect(new PostgresRefreshTokenStore({ pool: { query: async (_text: string, _values?: unknown[]) => ({ rows: [] }) } })).type.toBeAssignableTo<RefreshTokenStore>()
expect(new PostgresRefreshTokenStore({ pool, tokenVersionsOf: new MongoRefreshTokenStore({ url: 'mongodb://x' }) })).type.toRaiseError()
expect(postgresSchema('app_')).type.toBe<string>()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), postgres: { pool, tablePrefix: 'app_' } })).type.not.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), postgres: { tablePrefix: 'app_' } })).type.toRaiseError()

// The contract suite for third-party adapters
import { refreshTokenStoreContract, revocationStoreContract, realClock } from 'fastify-revocable-jwt/testing'
expect(revocationStoreContract((_name: string, _fn: () => Promise<void>) => {}, async () => ({ store: new CustomRevocation(), clock: realClock(), close: async () => {} }))).type.toBe<void>()
expect(refreshTokenStoreContract((_name: string, _fn: () => Promise<void>) => {}, async () => ({ store: new CustomRevocation(), clock: realClock(), close: async () => {} }))).type.toRaiseError()

// The browser client, a subpath export
import { createClient, RevocableJwtClient, RevocableJwtClientError } from 'fastify-revocable-jwt/client'
const client = createClient({ prefix: '/auth' })
expect(client).type.toBe<RevocableJwtClient>()
expect(client.fetch('/me')).type.not.toRaiseError()
expect(client.on('logged-out', () => {})).type.toBe<() => void>()
expect(client.on('no-such-event', () => {})).type.toRaiseError()
expect(new RevocableJwtClientError(401, 'TOKEN_EXPIRED', 'expired').code).type.toBe<string | null>()
