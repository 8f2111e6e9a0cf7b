// Type-level tests of the public API, against the built package (run `npm run build` first).
import { expect } from 'tstyche'
import Fastify, { type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify'
import revocableJwt, {
  AuthStoreUnavailableError,
  MemoryRefreshTokenStore,
  MemoryRevocationStore,
  TokenExpiredError,
  revocableJwtAuthenticate,
  revocableJwtCore,
  type AccessTokenClaims,
  type AuthContext,
  type IssuedTokens,
  type RefreshTokenStore,
  type RevocableJwtOptions,
  type RevocationState,
  type RevocationStore,
  type RotateResult
} from 'fastify-revocable-jwt'

const app = Fastify()

expect(revocableJwt).type.toBeAssignableTo<FastifyPluginAsync<RevocableJwtOptions>>()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32) })).type.not.toRaiseError()
expect(app.register(revocableJwt, {
  secret: 'x'.repeat(32),
  accessTokenTtl: '15m',
  refreshTokenTtl: 604800,
  cookie: { secure: false },
  routes: { sessions: false },
  revocationStore: new MemoryRevocationStore(),
  refreshTokenStore: new MemoryRefreshTokenStore()
})).type.not.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), accessTokenTtl: true })).type.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), algorithm: 'none' })).type.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), unknownOption: 1 })).type.toRaiseError()
expect(app.register(revocableJwt, {
  secret: 'x'.repeat(32),
  redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'app:' },
  accessTokenClaims: async (userId: string) => ({ role: userId === 'root' ? 'admin' : 'user' }),
  getTokenVersion: async () => 0,
  bumpTokenVersion: async () => 1
})).type.not.toRaiseError()
expect(app.register(revocableJwt, { secret: 'x'.repeat(32), accessTokenClaims: () => 'admin' })).type.toRaiseError()
expect(app.register(revocableJwtCore, { secret: 'x'.repeat(32) })).type.not.toRaiseError()
expect(app.register(revocableJwtAuthenticate)).type.not.toRaiseError()

// Decorators
expect(app.authenticate).type.toBe<(request: FastifyRequest, reply: FastifyReply) => Promise<void>>()
expect(app.get('/', { onRequest: [app.authenticate] }, async () => 'ok')).type.not.toRaiseError()
expect(app.bumpTokenVersion('u')).type.toBe<Promise<number>>()
expect(app.bumpTokenVersion(1)).type.toRaiseError()
expect(app.revokeAccessToken({ sub: 'u', jti: 'j', exp: 1 })).type.toBe<Promise<void>>()
expect(app.revocableJwt.options.accessTokenTtlMs).type.toBe<number>()
expect(app.revocableJwt.revocationStore).type.toBe<RevocationStore>()
expect(app.revocableJwt.refreshTokenStore).type.toBe<RefreshTokenStore>()
expect(app.revocableJwt.verifyAccessToken('t')).type.toBe<AccessTokenClaims>()
app.revocableJwt.events.on('refreshTokenReused', (event) => {
  expect(event.sessionId).type.toBe<string>()
  expect(event.ip).type.toBe<string | null>()
})
expect(app.revocableJwt.events.on('noSuchEvent', () => {})).type.toRaiseError()

app.get('/me', async (request: FastifyRequest, reply: FastifyReply) => {
  expect(request.auth).type.toBe<AuthContext | null>()
  expect(request.auth?.claims.sub).type.toBe<string | undefined>()
  expect(reply.issueTokens({ id: 'u' })).type.toBe<Promise<IssuedTokens>>()
  expect(reply.issueTokens({ id: 'u', claims: { role: 'admin' } })).type.toRaiseError()
  expect(reply.issueTokens({ id: 1 })).type.toRaiseError()
  expect(reply.clearRefreshCookie()).type.toBe<FastifyReply>()
  return null
})

// Stores: a custom adapter implements the interfaces
class CustomRevocation implements RevocationStore {
  async check (): Promise<RevocationState> { return { tokenRevoked: false, sessionRevoked: false, version: 0 } }
  async revokeToken (): Promise<void> {}
  async revokeSession (): Promise<void> {}
  async getTokenVersion (): Promise<number> { return 0 }
  async bumpTokenVersion (): Promise<number> { return 1 }
}
expect(new CustomRevocation()).type.toBeAssignableTo<RevocationStore>()
expect<{ check (): Promise<boolean> }>().type.not.toBeAssignableTo<RevocationStore>()
expect<RotateResult>().type.toBeAssignableFrom({ outcome: 'not-found' as const })
expect<RotateResult>().type.not.toBeAssignableFrom({ outcome: 'rotated' as const })

// Errors carry their codes and statuses
expect(new TokenExpiredError().code).type.toBe<'TOKEN_EXPIRED'>()
expect(new AuthStoreUnavailableError().statusCode).type.toBe<503>()

// Adapters
import { Redis } from 'ioredis'
import { MongoClient } from 'mongodb'
import { MongoRefreshTokenStore, RedisRefreshTokenStore, RedisRevocationStore } from 'fastify-revocable-jwt'
expect(new RedisRevocationStore({ client: new Redis({ lazyConnect: true }) })).type.toBeAssignableTo<RevocationStore>()
expect(new RedisRefreshTokenStore({ client: new Redis({ lazyConnect: true }), keyPrefix: 'app:' })).type.toBeAssignableTo<RefreshTokenStore>()
expect(new RedisRevocationStore({})).type.toRaiseError()
expect(new MongoRefreshTokenStore({ client: new MongoClient('mongodb://127.0.0.1') })).type.toBeAssignableTo<RefreshTokenStore>()

// The browser client, a subpath export
import { createClient, RevocableJwtClient, RevocableJwtClientError } from 'fastify-revocable-jwt/client'
const client = createClient({ prefix: '/auth' })
expect(client).type.toBe<RevocableJwtClient>()
expect(client.fetch('/me')).type.not.toRaiseError()
expect(client.on('logged-out', () => {})).type.toBe<() => void>()
expect(client.on('no-such-event', () => {})).type.toRaiseError()
expect(new RevocableJwtClientError(401, 'TOKEN_EXPIRED', 'expired').code).type.toBe<string | null>()
