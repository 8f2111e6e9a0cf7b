import { jwkThumbprint, publicJwkOf, isHmac, ALGORITHMS, type AccessTokenAlgorithm, type KeyMaterial, type ResolvedKey } from '../domain/keys.js'
import {
  DEFAULT_ACCESS_TOKEN_TTL,
  DEFAULT_CLOCK_TOLERANCE,
  DEFAULT_TOKEN_TYPE,
  DEFAULT_VERIFY_CACHE_SIZE,
  durationOption,
  optionalNonEmptyString,
  type Duration
} from '../options.js'
import type { AccessTokensOptions, RemoteKeySettings } from '../domain/access-tokens.js'

export const DEFAULT_ALGORITHM: AccessTokenAlgorithm = 'HS256'
/** Shortest HMAC key accepted (RFC 7518 §3.2: at least the hash size). */
export const MIN_SECRET_BYTES = 32
/** Longest access-token lifetime accepted: a longer one defeats short-lived tokens. */
export const MAX_ACCESS_TOKEN_TTL_MS = 86_400_000

/** One signing/verification key, selected by `kid` during key rotation. */
export interface AccessTokenKey {
  /** The key id written into the JWT header. Required for HMAC; an asymmetric key without one is named by its RFC 7638 thumbprint. */
  kid?: string
  /** HMAC secret (HS* algorithms, at least 32 bytes) or the PEM private key (asymmetric algorithms). Omit on keys that only verify. */
  secret?: KeyMaterial
  /** PEM public key (asymmetric algorithms); for HMAC leave it out, `secret` verifies. */
  publicKey?: KeyMaterial
}

/** Options of the access tokens: keys, algorithm, claims required, lifetime. */
export interface AccessTokenOptions {
  /**
   * HMAC secret (string or Buffer of at least 32 bytes) for HS* algorithms, or
   * `{ private, public }` PEM keys for RS/PS/ES/EdDSA. Give `keys` instead to rotate keys by `kid`.
   */
  secret?: KeyMaterial | { private: KeyMaterial, public: KeyMaterial } | undefined
  /**
   * Keys selected by the `kid` header: the first one with a `secret` signs, all of them
   * verify. Mutually exclusive with `secret`.
   */
  keys?: AccessTokenKey[]
  /**
   * The one algorithm access tokens are signed and verified with.
   * @default 'HS256'
   */
  algorithm?: AccessTokenAlgorithm
  /**
   * `iss` written into and required of access tokens.
   * @default undefined
   */
  issuer?: string
  /**
   * `aud` written into and required of access tokens.
   * @default undefined
   */
  audience?: string
  /**
   * The `typ` header of access tokens (RFC 8725 §3.11, RFC 9068); any other value is refused.
   * @default 'at+jwt'
   */
  tokenType?: string
  /**
   * Lifetime of access tokens (at most a day).
   * @default '15m'
   */
  accessTokenTtl?: Duration
  /**
   * How far in the future a token's `iat` may lie and still be accepted (clocks of
   * instances differ a little); further is `TOKEN_INVALID`. `exp` is exact.
   * @default '5s'
   */
  clockTolerance?: Duration
  /**
   * Remember this many verified access tokens (by their exact text, each until its
   * `exp`) so that a token seen again skips the signature check; size it to the access
   * tokens live at once (about 700 bytes each). Revocation checks are never cached.
   * 0 turns the cache off.
   * @default 10000
   */
  verifyCacheSize?: number
  /**
   * Verify with the public keys another service publishes at this JWKS URL (a resource
   * server): no secret, no private key. Without `algorithm`, each published key verifies
   * with its own `alg`, which must be asymmetric.
   * @default undefined
   */
  jwksUrl?: string
  /** How a JWKS from `jwksUrl` is fetched and kept. */
  jwks?: JwksFetchOptions
  /**
   * Publish the verifying public keys at this path (`GET`, a JWKS with `kid`, `alg`, `use`
   * and cache headers); with an HMAC algorithm it answers 404.
   * @default undefined (not published)
   */
  jwksRoute?: string
}

/** How a remote JWKS is fetched and kept. */
export interface JwksFetchOptions {
  /**
   * After a successful fetch, a token with an unknown `kid` causes another fetch at most
   * this often, however many arrive; so does a failed fetch.
   * @default '5s'
   */
  cooldown?: Duration
  /**
   * Fetch the keys again at the latest this long after the last successful fetch.
   * @default '10m'
   */
  maxAge?: Duration
  /**
   * A fetch slower than this fails (the request answers 503).
   * @default '5s'
   */
  timeout?: Duration
}

export const ACCESS_TOKEN_OPTION_NAMES = ['secret', 'keys', 'algorithm', 'issuer', 'audience', 'tokenType', 'accessTokenTtl', 'clockTolerance', 'verifyCacheSize', 'jwksUrl', 'jwks', 'jwksRoute'] as const
export const DEFAULT_JWKS_COOLDOWN = '5s'
export const DEFAULT_JWKS_MAX_AGE = '10m'
export const DEFAULT_JWKS_TIMEOUT = '5s'
const ASYMMETRIC = ALGORITHMS.filter(algorithm => !isHmac(algorithm))

function isKeyMaterial (value: unknown): value is KeyMaterial {
  return (typeof value === 'string' && value.length > 0) || (Buffer.isBuffer(value) && value.length > 0)
}

function checkHmacSecret (value: unknown, name: string): void {
  if (!isKeyMaterial(value)) throw new TypeError(`${name} must be a non-empty string or Buffer`)
  if ((typeof value === 'string' ? Buffer.byteLength(value) : value.length) < MIN_SECRET_BYTES) {
    throw new RangeError(`${name} must be at least ${MIN_SECRET_BYTES} bytes long for HMAC algorithms`)
  }
}

/** An asymmetric key: its public half must parse, and without a `kid` it is named by its thumbprint. */
function asymmetricKey (kid: string | undefined, signKey: KeyMaterial | undefined, publicKey: KeyMaterial, name: string): ResolvedKey {
  let jwk
  try {
    jwk = publicJwkOf(publicKey)
  } catch (err) {
    throw new TypeError(`${name} is not a PEM public key: ${(err as Error).message}`, { cause: err })
  }
  return { kid: kid ?? jwkThumbprint(jwk), signKey, verifyKey: publicKey }
}

function resolveKeys (options: AccessTokenOptions, algorithm: AccessTokenAlgorithm): ResolvedKey[] {
  const hmac = isHmac(algorithm)
  if (options.secret !== undefined && options.keys !== undefined) {
    throw new TypeError('secret and keys are mutually exclusive: give one of them')
  }
  if (options.keys !== undefined) {
    if (!Array.isArray(options.keys) || options.keys.length === 0) {
      throw new TypeError('keys must be a non-empty array of { kid, secret, publicKey }')
    }
    const seen = new Set<string>()
    const resolved = options.keys.map((key: AccessTokenKey, i) => {
      if (key === null || typeof key !== 'object') throw new TypeError(`keys[${i}] must be an object { kid, secret, publicKey }`)
      // An asymmetric key without one is named by its thumbprint.
      if ((hmac || key.kid !== undefined) && (typeof key.kid !== 'string' || key.kid.length === 0)) {
        throw new TypeError(`keys[${i}].kid must be a non-empty string`)
      }
      if (hmac) {
        checkHmacSecret(key.secret, `keys[${i}].secret`)
        return { kid: key.kid, signKey: key.secret, verifyKey: key.secret as KeyMaterial }
      }
      if (!isKeyMaterial(key.publicKey)) throw new TypeError(`keys[${i}].publicKey must be a PEM string or Buffer for ${algorithm}`)
      if (key.secret !== undefined && !isKeyMaterial(key.secret)) throw new TypeError(`keys[${i}].secret must be a PEM private key for ${algorithm}`)
      return asymmetricKey(key.kid, key.secret, key.publicKey, `keys[${i}].publicKey`)
    })
    resolved.forEach((key, i) => {
      if (seen.has(key.kid as string)) throw new TypeError(`keys[${i}].kid "${key.kid as string}" is used twice`)
      seen.add(key.kid as string)
    })
    return resolved
  }
  const secret = options.secret
  if (secret === undefined) throw new TypeError('secret is required (or keys, for key rotation)')
  if (hmac) {
    checkHmacSecret(secret, 'secret')
    return [{ kid: undefined, signKey: secret as KeyMaterial, verifyKey: secret as KeyMaterial }]
  }
  if (secret === null || typeof secret !== 'object' || Buffer.isBuffer(secret) || !isKeyMaterial(secret.public) || !isKeyMaterial(secret.private)) {
    throw new TypeError(`secret must be { private, public } PEM keys for ${algorithm}`)
  }
  return [asymmetricKey(undefined, secret.private, secret.public, 'secret.public')]
}

function resolveRemote (options: AccessTokenOptions): RemoteKeySettings {
  const url = options.jwksUrl as string
  if (options.secret !== undefined || options.keys !== undefined) {
    throw new TypeError('jwksUrl verifies with the keys another service publishes: give it without secret or keys')
  }
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {}
  if (parsed === undefined || !/^https?:$/.test(parsed.protocol)) throw new TypeError(`jwksUrl must be an http(s) URL, got ${JSON.stringify(url)}`)
  if (options.algorithm !== undefined && isHmac(options.algorithm)) {
    throw new TypeError(`algorithm ${options.algorithm} shares its secret: a JWKS publishes public keys only, give an asymmetric algorithm with jwksUrl`)
  }
  const jwks = options.jwks ?? {}
  if (jwks === null || typeof jwks !== 'object') throw new TypeError('jwks must be an object { cooldown, maxAge, timeout }')
  return {
    url,
    algorithms: options.algorithm === undefined ? ASYMMETRIC : [options.algorithm],
    cooldownMs: durationOption(jwks.cooldown, DEFAULT_JWKS_COOLDOWN, 'jwks.cooldown', 0, 3_600_000),
    maxAgeMs: durationOption(jwks.maxAge, DEFAULT_JWKS_MAX_AGE, 'jwks.maxAge', 1000, 86_400_000),
    timeoutMs: durationOption(jwks.timeout, DEFAULT_JWKS_TIMEOUT, 'jwks.timeout', 100, 60_000)
  }
}

/** Validate the access-token options (errors name the option) into the domain's settings. */
export function resolveAccessTokenOptions (options: AccessTokenOptions): AccessTokensOptions {
  const algorithm = options.algorithm ?? (options.jwksUrl === undefined ? DEFAULT_ALGORITHM : 'EdDSA')
  if (!ALGORITHMS.includes(algorithm)) {
    throw new TypeError(`algorithm must be one of ${ALGORITHMS.join(', ')}, got ${JSON.stringify(algorithm)}`)
  }
  if (options.jwksRoute !== undefined && (typeof options.jwksRoute !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(options.jwksRoute))) {
    throw new TypeError(`jwksRoute must be a path like "/.well-known/jwks.json", got ${JSON.stringify(options.jwksRoute)}`)
  }
  const remote = options.jwksUrl === undefined ? undefined : resolveRemote(options)
  const keys = remote === undefined ? resolveKeys(options, algorithm) : []
  optionalNonEmptyString(options.issuer, 'issuer')
  optionalNonEmptyString(options.audience, 'audience')
  const tokenType = options.tokenType ?? DEFAULT_TOKEN_TYPE
  if (typeof tokenType !== 'string' || tokenType.length === 0) throw new TypeError('tokenType must be a non-empty string')
  const verifyCacheSize = options.verifyCacheSize ?? DEFAULT_VERIFY_CACHE_SIZE
  if (!Number.isInteger(verifyCacheSize) || verifyCacheSize < 0) throw new RangeError('verifyCacheSize must be a non-negative integer')
  return {
    algorithm,
    keys,
    ...(remote !== undefined && { remote }),
    issuer: options.issuer,
    audience: options.audience,
    tokenType,
    ttlMs: durationOption(options.accessTokenTtl, DEFAULT_ACCESS_TOKEN_TTL, 'accessTokenTtl', 1000, MAX_ACCESS_TOKEN_TTL_MS),
    clockToleranceMs: durationOption(options.clockTolerance, DEFAULT_CLOCK_TOLERANCE, 'clockTolerance', 0, 300_000),
    verifyCacheSize
  }
}
