import { hkdfSync } from 'node:crypto'
import { createDecoder, createSigner, createVerifier } from 'fast-jwt'
import { TokenExpiredError, TokenInvalidError } from '../errors.js'
import { isUserId, randomId } from './refresh-tokens.js'
import { isHmac, publicJwks, type AccessTokenAlgorithm, type PublicJwk, type ResolvedKey } from './keys.js'
import { RemoteKeys } from './remote-keys.js'

/** The claims of an access token issued by this package. */
export interface AccessTokenClaims {
  /** The user id. */
  sub: string
  /** The session id; one per login, shared by every access and refresh token of that session. */
  sid: string
  /** The unique token id (128 random bits, base64url). */
  jti: string
  /** The user's token version when the token was issued. */
  ver: number
  /** Issued at, seconds since the epoch. */
  iat: number
  /** Expires at, seconds since the epoch. */
  exp: number
  iss?: string
  aud?: string | string[]
  /** Extra claims from the `accessTokenClaims` option. */
  [claim: string]: unknown
}

/** What an access token is signed for: the user, the session and the version it carries. */
export interface AccessTokenSubject {
  userId: string
  sessionId: string
  version: number
}

/** Keys published by another service (its JWKS), for an instance that only verifies. */
export interface RemoteKeySettings {
  url: string
  /** Algorithms a published key may verify with (asymmetric only). */
  algorithms: readonly AccessTokenAlgorithm[]
  cooldownMs: number
  maxAgeMs: number
  timeoutMs: number
}

export interface AccessTokensOptions {
  /** The one algorithm of the local keys (with remote keys: of each key, from `remote.algorithms`). */
  algorithm: AccessTokenAlgorithm
  /** The first key with a `signKey` signs; every key verifies (selected by `kid` when there are several). */
  keys: ResolvedKey[]
  /** Verify with the keys another service publishes instead of local ones. */
  remote?: RemoteKeySettings
  issuer?: string
  audience?: string
  /** The `typ` header written and required. */
  tokenType: string
  ttlMs: number
  /** How far in the future an `iat` is still accepted, ms (clocks of instances differ). `exp` is exact. */
  clockToleranceMs: number
  /** Verified tokens remembered by exact text until their `exp`; 0: none. */
  verifyCacheSize: number
}

/** Claims set by the package that `accessTokenClaims` may not set. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set(['sub', 'sid', 'jti', 'ver', 'iat', 'exp', 'nbf', 'iss', 'aud'])
const MAX_ID_LENGTH = 64
const CLAIMS_REQUIRED = ['sub', 'sid', 'jti', 'ver', 'iat', 'exp']

type Signer = (payload: Record<string, unknown>) => string
type Verifier = (token: string) => { header: Record<string, unknown>, payload: Record<string, unknown> }

function isId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/**
 * Only the canonical base64url spelling of a signature: the spare bits of its last
 * character are zero. Otherwise one token would have several accepted spellings.
 */
function hasCanonicalSignature (token: string): boolean {
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return Buffer.from(signature, 'base64url').toString('base64url') === signature
}

/**
 * Tokens that passed verification, by their exact text, each only until its `exp`: a
 * hit costs one Map lookup instead of a signature check. Only verification is
 * remembered, never a revocation answer. Oldest entries go first once `max` are held.
 */
export class VerifiedTokens {
  readonly #max: number
  readonly #claims = new Map<string, AccessTokenClaims>()

  constructor (max: number) {
    this.#max = max
  }

  get (token: string): AccessTokenClaims | undefined {
    const claims = this.#claims.get(token)
    if (claims === undefined) return undefined
    // Same clock as fast-jwt's expiry check, and stricter at the boundary: from `exp`
    // on, the token goes through the full verification, which answers TOKEN_EXPIRED.
    if (Date.now() < claims.exp * 1000) return claims
    this.#claims.delete(token)
    return undefined
  }

  set (token: string, claims: AccessTokenClaims): void {
    if (this.#claims.size >= this.#max) this.#claims.delete(this.#claims.keys().next().value as string)
    this.#claims.set(token, claims)
  }
}

/**
 * Access tokens: signed with one algorithm and the first signing key (its `kid` in the
 * header), verified with the key the `kid` selects, pinned to that algorithm, the
 * `typ`, the issuer and audience when configured, and claims of the right types. A
 * token's exact text is remembered once verified, until its `exp`.
 */
export class AccessTokens {
  /** This instance holds a private key or secret and can sign. */
  readonly canSign: boolean
  readonly ttlMs: number
  readonly algorithm: AccessTokenAlgorithm
  readonly #keys: readonly ResolvedKey[]
  readonly #signer: Signer | undefined
  readonly #verifiers = new Map<string | undefined, Verifier>()
  readonly #single: Verifier | undefined
  readonly #remote: RemoteKeys<Verifier> | undefined
  readonly #decodeHeader = createDecoder({ complete: true }) as (token: string) => { header: Record<string, unknown> }
  readonly #cache: VerifiedTokens | null
  readonly #toleranceMs: number

  constructor (options: AccessTokensOptions) {
    const { algorithm, issuer, audience, tokenType } = options
    this.algorithm = algorithm
    this.#keys = options.keys
    this.ttlMs = options.ttlMs
    this.#toleranceMs = options.clockToleranceMs
    const signing = options.keys.find(key => key.signKey !== undefined)
    this.canSign = signing !== undefined
    if (signing !== undefined) {
      this.#signer = createSigner({
        key: signing.signKey as string,
        algorithm,
        expiresIn: options.ttlMs,
        ...(signing.kid !== undefined && { kid: signing.kid }),
        ...(issuer !== undefined && { iss: issuer }),
        ...(audience !== undefined && { aud: audience }),
        // fast-jwt writes `typ` into the header; its types omit the option.
        ...{ typ: tokenType }
      }) as Signer
    }
    // fast-jwt's verifier for one key and algorithm, pinned to everything else required.
    const verifierFor = (key: string | Buffer, algorithm: AccessTokenAlgorithm): Verifier => createVerifier({
      key: key as string,
      algorithms: [algorithm],
      complete: true,
      checkTyp: tokenType.toLowerCase(),
      // allowedIss/allowedAud only judge a claim that is present: require it too.
      requiredClaims: [...CLAIMS_REQUIRED, ...(issuer !== undefined ? ['iss'] : []), ...(audience !== undefined ? ['aud'] : [])],
      // The exact-text cache below is the one that hits; fast-jwt's would add a SHA-256 per miss.
      cache: false,
      ...(issuer !== undefined && { allowedIss: issuer }),
      ...(audience !== undefined && { allowedAud: audience })
    }) as Verifier
    for (const key of options.keys) this.#verifiers.set(key.kid, verifierFor(key.verifyKey, algorithm))
    this.#remote = options.remote === undefined
      ? undefined
      : new RemoteKeys({ ...options.remote, makeVerifier: (pem, alg) => verifierFor(pem, alg as AccessTokenAlgorithm) })
    this.#single = this.#verifiers.size === 1 ? this.#verifiers.values().next().value : undefined
    this.#cache = options.verifyCacheSize > 0 ? new VerifiedTokens(options.verifyCacheSize) : null
  }

  /** The public keys that verify, as a JWKS; null for an HMAC algorithm (a secret is never published). */
  jwks (): { keys: PublicJwk[] } | null {
    if (this.#keys.length === 0) return null
    const keys = publicJwks(this.algorithm, this.#keys)
    return keys === null ? null : { keys }
  }

  /**
   * A key for another purpose derived (HKDF-SHA-256) from the HMAC signing secret, so
   * that one secret configures the package; null with an asymmetric algorithm.
   */
  deriveSecret (purpose: string): Buffer | null {
    const signing = this.#keys.find(key => key.signKey !== undefined)
    if (!isHmac(this.algorithm) || signing === undefined) return null
    return Buffer.from(hkdfSync('sha256', signing.signKey as string, 'fastify-revocable-jwt', purpose, 32))
  }

  /** Sign an access token for a session: `sub`, `sid`, `ver`, a fresh `jti`, `iat`, `exp`, and `claims`. */
  sign (subject: AccessTokenSubject, claims?: Record<string, unknown>): string {
    if (this.#signer === undefined) throw new TypeError('no signing key: this instance only verifies access tokens')
    if (claims !== undefined) {
      for (const name of Object.keys(claims)) {
        if (RESERVED_CLAIMS.has(name)) throw new TypeError(`claims.${name} is reserved and set by fastify-revocable-jwt`)
      }
    }
    return this.#signer({ ...claims, sub: subject.userId, sid: subject.sessionId, jti: randomId(), ver: subject.version })
  }

  /**
   * Verify an access token (no revocation check): `TokenExpiredError` when it has
   * expired, `TokenInvalidError` for anything else that is wrong. The claims returned
   * are frozen: they are shared by every request that presents the same token. With
   * local keys the answer is synchronous; with a remote JWKS it may be a promise (a key
   * to fetch), rejecting with `AuthStoreUnavailableError` when the JWKS cannot be had.
   */
  verify (token: string): AccessTokenClaims | Promise<AccessTokenClaims> {
    const cached = this.#cache?.get(token)
    if (cached !== undefined) return cached
    if (this.#remote !== undefined) return this.#verifyRemote(token, this.#remote)
    const claims = this.#checked(token, this.#localVerifier(token))
    this.#cache?.set(token, claims)
    return claims
  }

  #localVerifier (token: string): Verifier | undefined {
    if (this.#single !== undefined) return this.#single
    try {
      const kid = this.#decodeHeader(token).header.kid
      return typeof kid === 'string' ? this.#verifiers.get(kid) : undefined
    } catch {
      return undefined
    }
  }

  async #verifyRemote (token: string, remote: RemoteKeys<Verifier>): Promise<AccessTokenClaims> {
    let header: Record<string, unknown>
    try {
      header = this.#decodeHeader(token).header
    } catch {
      throw new TokenInvalidError()
    }
    const claims = this.#checked(token, await remote.verifierFor(header))
    this.#cache?.set(token, claims)
    return claims
  }

  /** Verify with `verify` (none: no key for the token) and check the claims. */
  #checked (token: string, verify: Verifier | undefined): AccessTokenClaims {
    if (verify === undefined) throw new TokenInvalidError()
    let payload: Record<string, unknown>
    try {
      payload = verify(token).payload
    } catch (err) {
      throw (err as { code?: string }).code === 'FAST_JWT_EXPIRED' ? new TokenExpiredError() : new TokenInvalidError()
    }
    if (!hasCanonicalSignature(token)) throw new TokenInvalidError()
    return this.#checkClaims(payload)
  }

  #checkClaims (payload: Record<string, unknown>): AccessTokenClaims {
    if (
      !isUserId(payload.sub) || !isId(payload.sid) || !isId(payload.jti) ||
      !Number.isSafeInteger(payload.ver) || (payload.ver as number) < 0 ||
      !isTime(payload.exp) || !isTime(payload.iat) || (payload.nbf !== undefined && !isTime(payload.nbf)) ||
      // Issued in the future: a clock far off, or a token minted to outlive its lifetime.
      payload.iat * 1000 > Date.now() + this.#toleranceMs
    ) {
      throw new TokenInvalidError()
    }
    return Object.freeze(payload) as AccessTokenClaims
  }
}
