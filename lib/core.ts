import { EventEmitter } from 'node:events'
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type {
  AccessTokenClaims,
  RefreshTokenStore,
  RevocableJwtCoreOptions,
  RevocableJwtEvents,
  RevocableJwtNamespace,
  RevocationStore,
  SessionRecord
} from '../types/index.js'
import { AuthStoreUnavailableError, TokenExpiredError, TokenInvalidError } from './errors.js'
import { resolveOptions, type ResolvedOptions } from './options.js'
import { guardStore } from './store-guard.js'
import { MemoryRefreshTokenStore, MemoryRevocationStore } from './stores/memory.js'
import { RedisRefreshTokenStore, RedisRevocationStore } from './stores/redis.js'
import { useRedisClient } from './redis-client.js'
import { MAX_USER_ID_LENGTH, randomId } from './tokens.js'

export const CORE_PLUGIN_NAME = 'fastify-revocable-jwt-core'
/** Where the plugins of this package find the shared internals on `fastify.revocableJwt`. */
export const kInternals = Symbol('fastify-revocable-jwt.internals')

const CLAIMS_REQUIRED = ['sub', 'sid', 'jti', 'ver', 'iat', 'exp']
const RESERVED_CLAIMS = new Set(['sub', 'sid', 'jti', 'ver', 'iat', 'exp', 'nbf', 'iss', 'aud'])
const MAX_ID_LENGTH = 64
const MAX_HEADER_FIELD = 256

type Signer = (payload: Record<string, unknown>) => string
type Verifier = (token: string) => { header: Record<string, unknown>, payload: Record<string, unknown> }
type Decoder = (token: string) => { header: Record<string, unknown> }

/** What the plugins of this package share; not part of the public API. */
export interface Internals {
  options: ResolvedOptions
  revocationStore: RevocationStore
  refreshTokenStore: RefreshTokenStore
  events: EventEmitter<RevocableJwtEvents>
  guard: <T>(operation: () => Promise<T>) => Promise<T>
  getVersion: (userId: string) => Promise<number>
  bumpVersion: (userId: string) => Promise<number>
  signAccessToken: (userId: string, sessionId: string, version: number, claims?: Record<string, unknown>) => string
  verifyAccessToken: (token: string) => AccessTokenClaims
  setRefreshCookie: (reply: FastifyReply, token: string) => void
  clearRefreshCookie: (reply: FastifyReply) => void
  clientInfo: (request: FastifyRequest) => { userAgent: string | null, ip: string | null }
  emit: <K extends keyof RevocableJwtEvents>(event: K, ...args: RevocableJwtEvents[K]) => void
  /** Revoke the session's access tokens, then delete its refresh tokens; false when the session was not the user's. */
  revokeSessionEverywhere: (userId: string, sessionId: string, reason: SessionRevokeReason) => Promise<boolean>
  /** Extra claims for a user's access tokens, from the `accessTokenClaims` option. */
  extraClaims: (userId: string) => Promise<Record<string, unknown> | undefined>
}

type SessionRevokeReason = RevocableJwtEvents['sessionRevoked'][0]['reason']

export type NamespaceWithInternals = RevocableJwtNamespace & { [kInternals]: Internals }

export function getInternals (fastify: FastifyInstance): Internals {
  return (fastify.revocableJwt as NamespaceWithInternals)[kInternals]
}

function isShortString (value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max
}

/** A user id as this package accepts it: a non-empty string of at most 128 bytes in UTF-8. */
export function checkUserId (userId: unknown, name = 'user id'): asserts userId is string {
  if (!isShortString(userId, MAX_USER_ID_LENGTH) || Buffer.byteLength(userId) > MAX_USER_ID_LENGTH) {
    throw new TypeError(`${name} must be a non-empty string of at most ${MAX_USER_ID_LENGTH} bytes`)
  }
}

function checkVersion (version: unknown): number {
  if (!Number.isSafeInteger(version) || (version as number) < 0) {
    throw new AuthStoreUnavailableError({ cause: new TypeError(`a token version must be a non-negative integer, got ${String(version)}`) })
  }
  return version as number
}

function checkClaimsShape (payload: Record<string, unknown>): AccessTokenClaims {
  if (
    !isShortString(payload.sub, MAX_USER_ID_LENGTH) ||
    !isShortString(payload.sid, MAX_ID_LENGTH) ||
    !isShortString(payload.jti, MAX_ID_LENGTH) ||
    !Number.isSafeInteger(payload.ver) || (payload.ver as number) < 0 ||
    typeof payload.exp !== 'number'
  ) {
    throw new TokenInvalidError()
  }
  // Frozen: authenticate reuses verified claims across requests, so a handler must not
  // be able to change what the next request sees.
  return Object.freeze(payload) as AccessTokenClaims
}

let jwtNamespaceCounter = 0

const fastifyRevocableJwtCore: FastifyPluginAsync<RevocableJwtCoreOptions> = async function fastifyRevocableJwtCore (fastify, opts) {
  const options = resolveOptions(opts)
  const { now } = options

  if (!fastify.hasPlugin('@fastify/cookie')) {
    await fastify.register(fastifyCookie)
  }

  // A private @fastify/jwt instance per key, registered in an encapsulated child
  // context: access tokens never share a key or verifier with the host app's JWTs,
  // the host may register its own @fastify/jwt before or after us, and the
  // verifier is built once.
  const signers: Signer[] = []
  const verifiers = new Map<string | undefined, Verifier>()
  let decodeHeader: Decoder | undefined
  await fastify.register(async function revocableJwtKeys (child) {
    for (const key of options.keys) {
      const namespace = `revocableJwt${++jwtNamespaceCounter}`
      const hmac = options.algorithm.startsWith('HS')
      const signKey = key.signKey
      await child.register(fastifyJwt, {
        namespace,
        secret: hmac ? key.verifyKey : { private: signKey as string, public: key.verifyKey as string },
        sign: {
          algorithm: options.algorithm,
          expiresIn: options.accessTokenTtlMs / 1000,
          typ: options.tokenType,
          ...(key.kid !== undefined && { kid: key.kid }),
          ...(options.issuer !== undefined && { iss: options.issuer }),
          ...(options.audience !== undefined && { aud: options.audience })
        },
        verify: {
          algorithms: [options.algorithm],
          complete: true,
          checkTyp: options.tokenType.toLowerCase(),
          // allowedIss/allowedAud only judge a claim that is present: require it too.
          requiredClaims: [...CLAIMS_REQUIRED, ...(options.issuer !== undefined ? ['iss'] : []), ...(options.audience !== undefined ? ['aud'] : [])],
          // authenticate remembers verified tokens by their exact text (verifyCacheSize); a
          // second cache here would only add a SHA-256 of the token and an LRU write per miss.
          cache: false,
          ...(options.issuer !== undefined && { allowedIss: options.issuer }),
          ...(options.audience !== undefined && { allowedAud: options.audience })
        },
        decode: { complete: true }
      } as Parameters<typeof fastifyJwt>[1])
      const jwt = (child.jwt as unknown as Record<string, { sign: Signer, verify: Verifier, decode: Decoder }>)[namespace]
      if (signKey !== undefined) signers.push(jwt.sign)
      verifiers.set(key.kid, jwt.verify)
      decodeHeader ??= jwt.decode
    }
  })
  const sign = signers[0]
  const singleVerifier = verifiers.size === 1 ? verifiers.values().next().value as Verifier : undefined

  function verifyAccessToken (token: string): AccessTokenClaims {
    let payload: Record<string, unknown>
    try {
      let verify = singleVerifier
      if (verify === undefined) {
        const kid = (decodeHeader as Decoder)(token).header.kid
        verify = typeof kid === 'string' ? verifiers.get(kid) : undefined
        if (verify === undefined) throw new TokenInvalidError()
      }
      payload = verify(token).payload
    } catch (err) {
      throw (err as { code?: string }).code === 'FAST_JWT_EXPIRED' ? new TokenExpiredError() : new TokenInvalidError()
    }
    return checkClaimsShape(payload)
  }

  function signAccessToken (userId: string, sessionId: string, version: number, claims?: Record<string, unknown>): string {
    if (claims !== undefined) {
      for (const name of Object.keys(claims)) {
        if (RESERVED_CLAIMS.has(name)) throw new TypeError(`claims.${name} is reserved and set by fastify-revocable-jwt`)
      }
    }
    return sign({ ...claims, sub: userId, sid: sessionId, jti: randomId(), ver: version })
  }

  const cookieOptions = {
    path: options.prefix,
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: options.cookie.secure,
    ...(options.cookie.domain !== undefined && { domain: options.cookie.domain })
  }
  const cookieMaxAge = Math.floor(options.refreshTokenTtlMs / 1000)

  function setRefreshCookie (reply: FastifyReply, token: string): void {
    reply.setCookie(options.cookie.name, token, { ...cookieOptions, maxAge: cookieMaxAge })
  }

  function clearRefreshCookie (reply: FastifyReply): void {
    reply.clearCookie(options.cookie.name, cookieOptions)
  }

  const ownsRevocationStore = options.revocationStore === undefined
  const ownsRefreshStore = options.refreshTokenStore === undefined
  // With `redis`, the stores not given default to Redis; the client belongs to @fastify/redis.
  const redis = options.redis !== undefined && (ownsRevocationStore || ownsRefreshStore)
    ? { client: await useRedisClient(fastify, options.redis, options.storeTimeoutMs), keyPrefix: options.redis.keyPrefix, now }
    : undefined
  if (redis === undefined && (ownsRevocationStore || ownsRefreshStore)) {
    fastify.log.debug('fastify-revocable-jwt: using a memory store; revocation is not shared between processes')
  }
  const revocationStore: RevocationStore = options.revocationStore ??
    (redis !== undefined ? new RedisRevocationStore(redis) : new MemoryRevocationStore({ now }))
  const refreshTokenStore: RefreshTokenStore = options.refreshTokenStore ??
    (redis !== undefined ? new RedisRefreshTokenStore(redis) : new MemoryRefreshTokenStore({ now }))
  const timeoutMs = options.storeTimeoutMs
  const guard = <T>(operation: () => Promise<T>): Promise<T> => guardStore(operation, timeoutMs)

  const events = new EventEmitter<RevocableJwtEvents>()
  function emit<K extends keyof RevocableJwtEvents> (event: K, ...args: RevocableJwtEvents[K]): void {
    try {
      (events.emit as (event: K, ...args: RevocableJwtEvents[K]) => boolean)(event, ...args)
    } catch (err) {
      // A failing listener must not turn a completed revocation into a 500.
      fastify.log.error({ err, event }, 'fastify-revocable-jwt: event listener threw')
    }
  }

  // Versions are read and bumped in one place: the app's own record, or the revocation store.
  const readVersion = options.getTokenVersion ?? ((userId: string) => revocationStore.getTokenVersion(userId))
  const writeVersion = options.bumpTokenVersion ?? ((userId: string) => revocationStore.bumpTokenVersion(userId))

  async function getVersion (userId: string): Promise<number> {
    return checkVersion(await guard(() => readVersion(userId)))
  }

  async function bumpVersion (userId: string): Promise<number> {
    const version = checkVersion(await guard(() => writeVersion(userId)))
    emit('tokenVersionBumped', { userId, version })
    return version
  }

  // A revoked session must outlive every access token of it, including one minted by a
  // refresh that raced the revocation (bounded by the store timeout).
  const sessionRevocationMs = options.accessTokenTtlMs + options.storeTimeoutMs

  /**
   * Revoke the session's access tokens first (idempotent, keyed by user), then delete
   * its refresh tokens: a failure in between leaves a retry that still completes.
   */
  async function revokeSessionEverywhere (userId: string, sessionId: string, reason: SessionRevokeReason): Promise<boolean> {
    await guard(() => revocationStore.revokeSession(userId, sessionId, now() + sessionRevocationMs))
    const deleted = await guard(() => refreshTokenStore.deleteSession(userId, sessionId))
    if (deleted || reason === 'reuse' || reason === 'stale-version' || reason === 'logout') {
      emit('sessionRevoked', { userId, sessionId, reason })
    }
    return deleted
  }

  async function logoutAll (userId: string): Promise<number> {
    checkUserId(userId)
    const [ended] = await Promise.all([
      guard(() => refreshTokenStore.deleteUser(userId)),
      bumpVersion(userId)
    ])
    return ended
  }

  async function listSessions (userId: string): Promise<SessionRecord[]> {
    checkUserId(userId)
    return await guard(() => refreshTokenStore.listSessions(userId, now()))
  }

  const claimsOf = options.accessTokenClaims
  async function extraClaims (userId: string): Promise<Record<string, unknown> | undefined> {
    if (claimsOf === undefined) return undefined
    const claims = await claimsOf(userId)
    if (claims === null || typeof claims !== 'object') throw new TypeError('accessTokenClaims must return an object of claims')
    return claims
  }

  function clientInfo (request: FastifyRequest): { userAgent: string | null, ip: string | null } {
    const userAgent = request.headers['user-agent']
    return {
      userAgent: typeof userAgent === 'string' && userAgent.length > 0 ? userAgent.slice(0, MAX_HEADER_FIELD) : null,
      ip: request.ip ?? null
    }
  }

  const internals: Internals = {
    options,
    revocationStore,
    refreshTokenStore,
    events,
    guard,
    getVersion,
    bumpVersion,
    signAccessToken,
    verifyAccessToken,
    setRefreshCookie,
    clearRefreshCookie,
    clientInfo,
    emit,
    revokeSessionEverywhere,
    extraClaims
  }
  const { keys: _keys, refreshTokenSecret: _secret, revocationStore: _r, refreshTokenStore: _s, getTokenVersion: _g, bumpTokenVersion: _b, accessTokenClaims: _c, now: _n, redis: _redis, ...publicOptions } = options
  const namespace: NamespaceWithInternals = {
    options: Object.freeze(publicOptions),
    revocationStore,
    refreshTokenStore,
    events,
    verifyAccessToken,
    async revokeSession (userId, sessionId, reason = 'revoked') {
      checkUserId(userId)
      if (typeof sessionId !== 'string' || sessionId.length === 0) throw new TypeError('sessionId must be a non-empty string')
      return await revokeSessionEverywhere(userId, sessionId, reason)
    },
    logoutAll,
    listSessions,
    [kInternals]: internals
  }
  fastify.decorate('revocableJwt', namespace)
  fastify.decorateRequest('auth', null)

  fastify.addHook('onReady', async function initStores () {
    await revocationStore.init?.()
    if (refreshTokenStore !== (revocationStore as unknown)) await refreshTokenStore.init?.()
  })
  fastify.addHook('onClose', async function closeOwnedStores () {
    if (ownsRevocationStore) await revocationStore.close?.()
    if (ownsRefreshStore) await refreshTokenStore.close?.()
  })
}

/**
 * The shared core: validates the options, registers @fastify/cookie (unless the app
 * has) and a private @fastify/jwt instance, and holds the stores. Every other plugin
 * of the package depends on it; the umbrella plugin registers it for you.
 */
export const revocableJwtCore = fp(fastifyRevocableJwtCore, {
  fastify: '5.x',
  name: CORE_PLUGIN_NAME,
  decorators: {}
})
export default revocableJwtCore
