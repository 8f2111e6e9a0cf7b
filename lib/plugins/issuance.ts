import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Sessions, type ClientInfo } from '../domain/sessions.js'
import { TokenIssuer, type ClaimsSource, type IssuedTokens, type SessionTokens } from '../domain/token-issuer.js'
import { checkUserId } from '../domain/refresh-tokens.js'
import {
  DEFAULT_MAX_SESSIONS,
  DEFAULT_REFRESH_REUSE_GRACE,
  DEFAULT_REFRESH_TOKEN_TTL,
  KEEP_ROTATED_PER_SESSION,
  checkOptionNames,
  checkStore,
  durationOption,
  optionalFunction,
  type Duration
} from '../options.js'
import type { RefreshTokenStore } from '../stores/types.js'
import type { TokenSubject } from '../types.js'
import { AUTHENTICATE_PLUGIN_NAME } from './authenticate.js'
import { isProvided, provide } from './namespace.js'
import { resolveRedisOptions } from './redis-client.js'
import type { RevocableJwtRedisOptions } from './redis-options.js'
import { resolvePostgresOptions, type RevocableJwtPostgresOptions } from './postgres-option.js'
import { RefreshCookie, checkPrefix, resolveRefreshCookieOptions, type RefreshCookieOptions } from './refresh-cookie.js'
import { defaultStore, manageStore } from './stores.js'

export const ISSUANCE_PLUGIN_NAME = 'fastify-revocable-jwt-issuance'
const MIN_SECRET_BYTES = 32
const MAX_HEADER_FIELD = 256

/** Options of token issuance: sessions, their refresh tokens and the cookie that carries them. */
export interface IssuanceOptions {
  /**
   * Where sessions and their hashed refresh tokens live.
   * @default a Redis store when `redis` is set, a PostgreSQL one when `postgres` is, else a new memory store (single process only)
   */
  refreshTokenStore?: RefreshTokenStore
  /**
   * Keep sessions in Redis, shared by every instance: a Redis URL, or
   * `{ namespace, url, clientOptions, keyPrefix }` (needs `ioredis` and `@fastify/redis`).
   * @default undefined (memory)
   */
  redis?: string | RevocableJwtRedisOptions | undefined
  /**
   * Keep sessions in PostgreSQL, shared by every instance: `{ pool, tablePrefix,
   * createTables, sweepInterval }` with the app's `pg` Pool.
   * @default undefined (memory)
   */
  postgres?: RevocableJwtPostgresOptions
  /**
   * Lifetime of a refresh token; each rotation mints a child with a full lifetime (the session slides).
   * @default '7d'
   */
  refreshTokenTtl?: Duration
  /**
   * How long a rotated refresh token may be presented again and still be answered with
   * the session's live token (two tabs refreshing at once). After it, a presentation is
   * treated as theft. At most 60 seconds.
   * @default '10s'
   */
  refreshReuseGrace?: Duration
  /**
   * Server key (at least 32 bytes) for deriving a rotated refresh token's child with HMAC-SHA256.
   * Every instance of a service must share it.
   * @default derived from `secret` with HKDF when `secret` is an HMAC secret; required otherwise
   */
  refreshTokenSecret?: string | Buffer | undefined
  /**
   * Live sessions a user may hold (at most 10,000); a login beyond it ends the least
   * recently used one. Listing sessions and logout-all cost one store step per session,
   * so the limit is also what bounds them.
   * @default 100
   */
  maxSessions?: number
  /**
   * Extra claims for every access token of a user, at login and at each refresh (so a
   * role change shows at the next refresh). Reserved claims (`sub`, `sid`, `jti`, `ver`,
   * `iat`, `exp`, `nbf`, `iss`, `aud`) are refused. A failure is a 503.
   * @default undefined
   */
  accessTokenClaims?: ClaimsSource
  /** Refresh cookie options. */
  cookie?: RefreshCookieOptions
  /**
   * Where the refresh routes are mounted; also the cookie's default `Path`.
   * @default '/auth'
   */
  prefix?: string
  /**
   * The clock, in ms since the epoch, for sessions and the grace window. Tests inject one.
   * @default Date.now
   */
  now?: () => number
}

export const ISSUANCE_OPTION_NAMES = ['refreshTokenStore', 'redis', 'postgres', 'refreshTokenTtl', 'refreshReuseGrace', 'refreshTokenSecret', 'maxSessions', 'accessTokenClaims', 'cookie', 'prefix', 'now'] as const

/** Who is asking, as recorded on the session (bounded: the values come from the client). */
export function clientInfo (request: FastifyRequest): ClientInfo {
  const userAgent = request.headers['user-agent']
  return {
    userAgent: typeof userAgent === 'string' && userAgent.length > 0 ? userAgent.slice(0, MAX_HEADER_FIELD) : null,
    ip: request.ip ?? null
  }
}

/** Highest `maxSessions`: a Redis script that ends a user's sessions must stay short. */
const MAX_SESSIONS_LIMIT = 10_000

const fastifyRevocableJwtIssuance: FastifyPluginAsync<IssuanceOptions> = async function fastifyRevocableJwtIssuance (fastify, opts) {
  checkOptionNames(opts, ISSUANCE_OPTION_NAMES, 'revocableJwtIssuance')
  const namespace = fastify.revocableJwt
  if (!isProvided(namespace, 'revocation')) {
    throw new Error('revocableJwtIssuance needs revocableJwtTokenVersions (and revocableJwtRevocation) registered before it: sessions are revoked through them')
  }
  const { accessTokens, revocation } = namespace
  if (!accessTokens.canSign) throw new TypeError('revocableJwtIssuance needs a signing key: give secret (or keys with a secret) to revocableJwtAuthenticate')
  checkStore(opts.refreshTokenStore, 'refreshTokenStore', ['create', 'find', 'rotate', 'listSessions', 'deleteSession', 'deleteUser'])
  optionalFunction(opts.accessTokenClaims, 'accessTokenClaims')
  optionalFunction(opts.now, 'now')
  const now = opts.now ?? Date.now
  const refreshTokenTtlMs = durationOption(opts.refreshTokenTtl, DEFAULT_REFRESH_TOKEN_TTL, 'refreshTokenTtl', 60_000, 366 * 86_400_000)
  if (refreshTokenTtlMs <= accessTokens.ttlMs) throw new RangeError('refreshTokenTtl must be longer than accessTokenTtl')
  const refreshReuseGraceMs = durationOption(opts.refreshReuseGrace, DEFAULT_REFRESH_REUSE_GRACE, 'refreshReuseGrace', 0, 60_000)
  const maxSessions = opts.maxSessions ?? DEFAULT_MAX_SESSIONS
  if (!Number.isSafeInteger(maxSessions) || maxSessions < 1 || maxSessions > MAX_SESSIONS_LIMIT) {
    throw new RangeError(`maxSessions must be an integer from 1 to ${MAX_SESSIONS_LIMIT}, got ${String(opts.maxSessions)}`)
  }
  let refreshTokenSecret: Buffer | null
  if (opts.refreshTokenSecret !== undefined) {
    const given = opts.refreshTokenSecret
    if (!((typeof given === 'string' || Buffer.isBuffer(given)) && Buffer.byteLength(given) >= MIN_SECRET_BYTES)) {
      throw new RangeError(`refreshTokenSecret must be a string or Buffer of at least ${MIN_SECRET_BYTES} bytes`)
    }
    refreshTokenSecret = Buffer.from(given)
  } else {
    // A separate key for a separate purpose, derived so that one secret configures the package.
    refreshTokenSecret = accessTokens.deriveSecret('refresh-token-rotation')
    if (refreshTokenSecret === null) {
      throw new TypeError(`refreshTokenSecret is required with ${accessTokens.algorithm}: every instance must derive rotated refresh tokens with the same key`)
    }
  }
  const prefix = checkPrefix(opts.prefix)
  const cookie = new RefreshCookie(resolveRefreshCookieOptions(opts.cookie, prefix, refreshTokenTtlMs), prefix, fastify)

  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)
  const { store, owned } = await defaultStore<RefreshTokenStore>(fastify, opts.refreshTokenStore, {
    redis: resolveRedisOptions(opts.redis),
    postgres: resolvePostgresOptions(opts.postgres, opts.redis),
    storeTimeoutMs: revocation.storeTimeoutMs,
    now
  }, 'refresh-token', revocation.store)
  manageStore(fastify, store, owned)

  const sessions = new Sessions({
    store,
    revocation,
    events: namespace.events,
    refreshTokenSecret,
    refreshTokenTtlMs,
    refreshReuseGraceMs,
    accessTokenTtlMs: accessTokens.ttlMs,
    storeTimeoutMs: revocation.storeTimeoutMs,
    maxSessions,
    keepRotated: KEEP_ROTATED_PER_SESSION,
    now,
    warn: message => fastify.log.warn(message)
  })
  const tokenIssuer = new TokenIssuer({ accessTokens, sessions, revocation, claims: opts.accessTokenClaims })

  /** A login's session and its token pair, with no cookie set: the transport is the caller's. */
  async function startSession (request: FastifyRequest, subject: TokenSubject): Promise<SessionTokens> {
    if (subject === null || typeof subject !== 'object') throw new TypeError('issueTokens needs a subject { id }')
    checkUserId(subject.id, 'subject.id')
    if ('claims' in subject) throw new TypeError('issueTokens takes no claims: give the accessTokenClaims option, so that refreshed tokens carry them too')
    const version = subject.tokenVersion
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 0)) throw new TypeError('subject.tokenVersion must be a non-negative integer')
    return await tokenIssuer.login(subject.id, clientInfo(request), version)
  }

  async function issueTokens (reply: FastifyReply, subject: TokenSubject): Promise<IssuedTokens> {
    const issued = await startSession(reply.request, subject)
    cookie.set(reply, issued.refreshToken)
    reply.header('cache-control', 'no-store')
    return issued.body
  }

  if (fastify.hasReplyDecorator('issueTokens') || fastify.hasReplyDecorator('clearRefreshCookie')) {
    throw new Error('revocableJwtIssuance: reply.issueTokens or reply.clearRefreshCookie is already decorated by another plugin')
  }
  fastify.decorateReply('issueTokens', function (this: FastifyReply, subject: TokenSubject) {
    return issueTokens(this, subject)
  })
  fastify.decorateReply('clearRefreshCookie', function (this: FastifyReply): FastifyReply {
    cookie.clear(this)
    return this
  })

  provide(namespace, {
    sessions,
    refreshTokenStore: store,
    tokenIssuer,
    refreshCookie: cookie,
    issueTokens,
    startSession,
    async revokeSession (userId: string, sessionId: string): Promise<boolean> {
      checkUserId(userId)
      if (typeof sessionId !== 'string' || sessionId.length === 0) throw new TypeError('sessionId must be a non-empty string')
      return await sessions.revokeOwn(userId, sessionId)
    },
    async logoutAll (userId: string): Promise<number> {
      checkUserId(userId)
      return await sessions.endAll(userId)
    },
    async listSessions (userId: string) {
      checkUserId(userId)
      return await sessions.list(userId)
    },
    async changeCredentials (userId: string, write: () => Promise<void>): Promise<number> {
      checkUserId(userId)
      if (typeof write !== 'function') throw new TypeError('changeCredentials needs the function that writes the new credentials')
      // Before: every session ends now. After: a login that read the old credentials
      // before `write` holds a version from before this bump, and ends stale.
      await sessions.endAll(userId)
      await write()
      return await revocation.bumpVersion(userId)
    }
  })
}

/**
 * Token issuance: `reply.issueTokens({ id })` starts a session from a login handler
 * (signs the access token, mints the refresh token, stores its hash, sets the cookie);
 * `fastify.revocableJwt` gains the session operations (revoke, logout-all, list).
 */
export const revocableJwtIssuance = fp(fastifyRevocableJwtIssuance, {
  fastify: '5.x',
  name: ISSUANCE_PLUGIN_NAME,
  dependencies: [AUTHENTICATE_PLUGIN_NAME]
})
