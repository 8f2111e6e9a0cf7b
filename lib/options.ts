import { hkdfSync } from 'node:crypto'
import type {
  AccessTokenAlgorithm,
  AccessTokenKey,
  Duration,
  KeyMaterial,
  NormalizedOptions,
  RevocableJwtCoreOptions,
  RevocableJwtRedisOptions
} from '../types/index.js'

export const DEFAULT_ALGORITHM: AccessTokenAlgorithm = 'HS256'
export const DEFAULT_TOKEN_TYPE = 'at+jwt'
export const DEFAULT_ACCESS_TOKEN_TTL = '15m'
export const DEFAULT_REFRESH_TOKEN_TTL = '7d'
export const DEFAULT_REFRESH_REUSE_GRACE = '10s'
export const DEFAULT_STORE_TIMEOUT = '2s'
export const DEFAULT_VERIFY_CACHE_SIZE = 10_000
export const DEFAULT_PREFIX = '/auth'
export const DEFAULT_COOKIE_NAME = 'refresh_token'
export const DEFAULT_REDIS_KEY_PREFIX = 'rjwt:'
/** Shortest HMAC key accepted (RFC 7518 §3.2: at least the hash size). */
export const MIN_SECRET_BYTES = 32

const ALGORITHMS: readonly AccessTokenAlgorithm[] = [
  'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'
]
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d+)([smhd]?)$/
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const ORIGIN = /^https?:\/\/[^/?#\s]+$/

/**
 * Parse a duration: a number of seconds, or digits with an optional unit
 * (`900`, `900s`, `15m`, `2h`, `7d`). Returns milliseconds; throws a TypeError
 * naming `name` for anything else.
 */
export function parseDuration (value: Duration, name: string): number {
  let ms: number
  if (typeof value === 'number') {
    ms = value * 1000
  } else if (typeof value === 'string' && DURATION.test(value.trim())) {
    const [, digits, unit] = DURATION.exec(value.trim()) as RegExpExecArray
    ms = Number(digits) * UNIT_MS[unit === '' ? 's' : unit]
  } else {
    throw new TypeError(`${name} must be a number of seconds or a string like "900", "900s", "15m" or "7d", got ${JSON.stringify(value)}`)
  }
  if (!Number.isFinite(ms) || ms < 0 || !Number.isSafeInteger(Math.round(ms))) {
    throw new RangeError(`${name} must be a finite, non-negative duration, got ${String(value)}`)
  }
  return Math.round(ms)
}

function isHmac (algorithm: AccessTokenAlgorithm): boolean {
  return algorithm.startsWith('HS')
}

function isKeyMaterial (value: unknown): value is KeyMaterial {
  return (typeof value === 'string' && value.length > 0) || (Buffer.isBuffer(value) && value.length > 0)
}

function byteLength (value: KeyMaterial): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length
}

function checkHmacSecret (value: unknown, name: string): void {
  if (!isKeyMaterial(value)) {
    throw new TypeError(`${name} must be a non-empty string or Buffer`)
  }
  if (byteLength(value) < MIN_SECRET_BYTES) {
    throw new RangeError(`${name} must be at least ${MIN_SECRET_BYTES} bytes long for HMAC algorithms`)
  }
}

/** A key ready for @fastify/jwt: what signs (if anything) and what verifies. */
export interface ResolvedKey {
  kid: string | undefined
  signKey: KeyMaterial | undefined
  verifyKey: KeyMaterial
}

export interface ResolvedOptions extends NormalizedOptions {
  keys: ResolvedKey[]
  refreshTokenSecret: Buffer
  revocationStore: RevocableJwtCoreOptions['revocationStore']
  refreshTokenStore: RevocableJwtCoreOptions['refreshTokenStore']
  getTokenVersion: RevocableJwtCoreOptions['getTokenVersion']
  bumpTokenVersion: RevocableJwtCoreOptions['bumpTokenVersion']
  accessTokenClaims: RevocableJwtCoreOptions['accessTokenClaims']
  now: () => number
  redis: ResolvedRedisOptions | undefined
}

export type ResolvedRedisOptions = Omit<RevocableJwtRedisOptions, 'keyPrefix'> & { keyPrefix: string }

function resolveRedisOptions (redis: RevocableJwtCoreOptions['redis']): ResolvedRedisOptions | undefined {
  if (redis === undefined) return undefined
  const given: RevocableJwtRedisOptions = typeof redis === 'string' ? { url: redis } : redis
  if (given === null || typeof given !== 'object') throw new TypeError('redis must be a Redis URL or an object { namespace, url, clientOptions, keyPrefix }')
  for (const name of ['namespace', 'url'] as const) {
    const value = given[name]
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new TypeError(`redis.${name} must be a non-empty string`)
  }
  if (given.clientOptions !== undefined && (given.clientOptions === null || typeof given.clientOptions !== 'object')) {
    throw new TypeError('redis.clientOptions must be an object of ioredis options')
  }
  const keyPrefix = given.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX
  if (typeof keyPrefix !== 'string' || /[{}]/.test(keyPrefix)) {
    throw new TypeError('redis.keyPrefix must be a string without "{" or "}" (they would change the Redis Cluster hash slot)')
  }
  return { namespace: given.namespace, url: given.url, clientOptions: given.clientOptions, keyPrefix }
}

function resolveKeys (options: RevocableJwtCoreOptions, algorithm: AccessTokenAlgorithm): ResolvedKey[] {
  const hmac = isHmac(algorithm)
  if (options.secret !== undefined && options.keys !== undefined) {
    throw new TypeError('secret and keys are mutually exclusive: give one of them')
  }
  if (options.keys !== undefined) {
    if (!Array.isArray(options.keys) || options.keys.length === 0) {
      throw new TypeError('keys must be a non-empty array of { kid, secret, publicKey }')
    }
    const seen = new Set<string>()
    const keys = options.keys.map((key: AccessTokenKey, i) => {
      if (key === null || typeof key !== 'object' || typeof key.kid !== 'string' || key.kid.length === 0) {
        throw new TypeError(`keys[${i}].kid must be a non-empty string`)
      }
      if (seen.has(key.kid)) throw new TypeError(`keys[${i}].kid "${key.kid}" is used twice`)
      seen.add(key.kid)
      if (hmac) {
        checkHmacSecret(key.secret, `keys[${i}].secret`)
        return { kid: key.kid, signKey: key.secret, verifyKey: key.secret as KeyMaterial }
      }
      if (!isKeyMaterial(key.publicKey)) throw new TypeError(`keys[${i}].publicKey must be a PEM string or Buffer for ${algorithm}`)
      if (key.secret !== undefined && !isKeyMaterial(key.secret)) throw new TypeError(`keys[${i}].secret must be a PEM private key for ${algorithm}`)
      return { kid: key.kid, signKey: key.secret, verifyKey: key.publicKey }
    })
    if (keys[0].signKey === undefined) {
      throw new TypeError('keys[0] must have a secret (private key): the first key signs')
    }
    return keys
  }
  const secret = options.secret
  if (secret === undefined) {
    throw new TypeError('secret is required (or keys, for key rotation)')
  }
  if (hmac) {
    checkHmacSecret(secret, 'secret')
    return [{ kid: undefined, signKey: secret as KeyMaterial, verifyKey: secret as KeyMaterial }]
  }
  if (secret === null || typeof secret !== 'object' || Buffer.isBuffer(secret) || !isKeyMaterial(secret.public) || !isKeyMaterial(secret.private)) {
    throw new TypeError(`secret must be { private, public } PEM keys for ${algorithm}`)
  }
  return [{ kid: undefined, signKey: secret.private, verifyKey: secret.public }]
}

function resolveRefreshSecret (options: RevocableJwtCoreOptions, keys: ResolvedKey[], algorithm: AccessTokenAlgorithm): Buffer {
  if (options.refreshTokenSecret !== undefined) {
    checkHmacSecret(options.refreshTokenSecret, 'refreshTokenSecret')
    return Buffer.from(options.refreshTokenSecret)
  }
  if (!isHmac(algorithm)) {
    throw new TypeError(`refreshTokenSecret is required with ${algorithm}: every instance must derive rotated refresh tokens with the same key`)
  }
  // A separate key for a separate purpose, derived so that one secret suffices to configure the package.
  return Buffer.from(hkdfSync('sha256', keys[0].signKey as KeyMaterial, 'fastify-revocable-jwt', 'refresh-token-rotation', 32))
}

function checkStore (store: unknown, name: string, methods: string[]): void {
  if (store === undefined) return
  if (store === null || typeof store !== 'object') throw new TypeError(`${name} must be an object`)
  for (const method of methods) {
    if (typeof (store as Record<string, unknown>)[method] !== 'function') {
      throw new TypeError(`${name}.${method} must be a function`)
    }
  }
}

/** Validate the options (throwing an error that names the option) and return a new, normalised object. */
export function resolveOptions (options: RevocableJwtCoreOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
  const algorithm = options.algorithm ?? DEFAULT_ALGORITHM
  if (!ALGORITHMS.includes(algorithm)) {
    throw new TypeError(`algorithm must be one of ${ALGORITHMS.join(', ')}, got ${JSON.stringify(algorithm)}`)
  }
  const keys = resolveKeys(options, algorithm)
  const refreshTokenSecret = resolveRefreshSecret(options, keys, algorithm)

  for (const name of ['issuer', 'audience'] as const) {
    const value = options[name]
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
      throw new TypeError(`${name} must be a non-empty string`)
    }
  }
  const tokenType = options.tokenType ?? DEFAULT_TOKEN_TYPE
  if (typeof tokenType !== 'string' || tokenType.length === 0) throw new TypeError('tokenType must be a non-empty string')

  const accessTokenTtlMs = parseDuration(options.accessTokenTtl ?? DEFAULT_ACCESS_TOKEN_TTL, 'accessTokenTtl')
  const refreshTokenTtlMs = parseDuration(options.refreshTokenTtl ?? DEFAULT_REFRESH_TOKEN_TTL, 'refreshTokenTtl')
  const refreshReuseGraceMs = parseDuration(options.refreshReuseGrace ?? DEFAULT_REFRESH_REUSE_GRACE, 'refreshReuseGrace')
  const storeTimeoutMs = parseDuration(options.storeTimeout ?? DEFAULT_STORE_TIMEOUT, 'storeTimeout')
  if (accessTokenTtlMs < 1000) throw new RangeError('accessTokenTtl must be at least 1 second')
  if (refreshTokenTtlMs <= accessTokenTtlMs) throw new RangeError('refreshTokenTtl must be longer than accessTokenTtl')
  if (refreshReuseGraceMs > 60_000) throw new RangeError('refreshReuseGrace must be at most 60 seconds: a longer window lets a stolen token through')
  if (storeTimeoutMs < 1) throw new RangeError('storeTimeout must be at least 1 millisecond')

  const verifyCacheSize = options.verifyCacheSize ?? DEFAULT_VERIFY_CACHE_SIZE
  if (!Number.isInteger(verifyCacheSize) || verifyCacheSize < 0) {
    throw new RangeError('verifyCacheSize must be a non-negative integer')
  }

  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(prefix) || (prefix.length > 1 && prefix.endsWith('/'))) {
    throw new TypeError(`prefix must be a path like "/auth" (leading slash, no trailing slash), got ${JSON.stringify(prefix)}`)
  }

  const cookie = options.cookie ?? {}
  if (cookie === null || typeof cookie !== 'object') throw new TypeError('cookie must be an object')
  const cookieName = cookie.name ?? DEFAULT_COOKIE_NAME
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) throw new TypeError('cookie.name must be a valid cookie name')
  if (cookie.secure !== undefined && typeof cookie.secure !== 'boolean') throw new TypeError('cookie.secure must be a boolean')
  if (cookie.domain !== undefined && (typeof cookie.domain !== 'string' || cookie.domain.length === 0)) {
    throw new TypeError('cookie.domain must be a non-empty string')
  }

  const allowedOrigins = options.allowedOrigins ?? []
  if (!Array.isArray(allowedOrigins) || !allowedOrigins.every(o => typeof o === 'string' && ORIGIN.test(o))) {
    throw new TypeError('allowedOrigins must be an array of origins like "https://app.example.com"')
  }

  checkStore(options.revocationStore, 'revocationStore', ['check', 'revokeToken', 'revokeSession', 'getTokenVersion', 'bumpTokenVersion'])
  checkStore(options.refreshTokenStore, 'refreshTokenStore', ['create', 'rotate', 'listSessions', 'deleteSession', 'deleteUser'])
  for (const name of ['getTokenVersion', 'bumpTokenVersion', 'accessTokenClaims'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new TypeError(`${name} must be a function`)
  }
  if ((options.getTokenVersion === undefined) !== (options.bumpTokenVersion === undefined)) {
    // Reading versions from one place and bumping them in another would make logout-all a no-op.
    throw new TypeError('getTokenVersion and bumpTokenVersion go together: give both or neither')
  }
  if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('now must be a function')
  const redis = resolveRedisOptions(options.redis)

  return {
    algorithm,
    issuer: options.issuer,
    audience: options.audience,
    tokenType,
    accessTokenTtlMs,
    refreshTokenTtlMs,
    refreshReuseGraceMs,
    storeTimeoutMs,
    verifyCacheSize,
    prefix,
    cookie: { name: cookieName, secure: cookie.secure ?? true, domain: cookie.domain },
    allowedOrigins: allowedOrigins.map(o => o.toLowerCase()),
    keys,
    refreshTokenSecret,
    revocationStore: options.revocationStore,
    refreshTokenStore: options.refreshTokenStore,
    getTokenVersion: options.getTokenVersion,
    bumpTokenVersion: options.bumpTokenVersion,
    accessTokenClaims: options.accessTokenClaims,
    now: options.now ?? Date.now,
    redis
  }
}
