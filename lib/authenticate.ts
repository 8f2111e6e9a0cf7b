import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { AccessTokenClaims, RevocationState } from '../types/index.js'
import { TokenInvalidError, TokenMissingError, TokenRevokedError } from './errors.js'
import { CORE_PLUGIN_NAME, checkUserId, getInternals } from './core.js'
import { guardPromise } from './store-guard.js'

export const AUTHENTICATE_PLUGIN_NAME = 'fastify-revocable-jwt-authenticate'
/** Longest `Authorization` header looked at; anything longer is refused unparsed. */
export const MAX_AUTHORIZATION_LENGTH = 8192

const SPACE = 32

/**
 * The token of a `Bearer` header (scheme case-insensitive, one or more spaces, then
 * the token, trimmed), or null when the header is not a Bearer one. Same result as
 * `/^Bearer +/i` and `.replace().trim()`, without a regex run and a copy per request.
 */
function bearerToken (header: string): string | null {
  if (header.length < 7 || header.charCodeAt(6) !== SPACE) return null
  if (!header.startsWith('Bearer') && header.slice(0, 6).toLowerCase() !== 'bearer') return null
  let start = 7
  while (start < header.length && header.charCodeAt(start) === SPACE) start++
  return header.slice(start).trim()
}

/**
 * Tokens that passed `verifyAccessToken`, by their exact text, each only until its `exp`:
 * a hit costs one Map lookup, where @fastify/jwt's verify cache first computes a SHA-256
 * of the token for its key on every call. Only verification is remembered, never a
 * revocation answer. Oldest entries go first once `max` are held.
 */
class VerifiedTokens {
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

const fastifyRevocableJwtAuthenticate: FastifyPluginAsync = async function fastifyRevocableJwtAuthenticate (fastify) {
  const { verifyAccessToken, revocationStore, guard, getVersion, options } = getInternals(fastify)
  const lookupVersion = options.getTokenVersion
  const timeoutMs = options.storeTimeoutMs
  const verified = options.verifyCacheSize > 0 ? new VerifiedTokens(options.verifyCacheSize) : null

  function verify (token: string): AccessTokenClaims {
    let claims = verified?.get(token)
    if (claims === undefined) {
      claims = verifyAccessToken(token)
      verified?.set(token, claims)
    }
    return claims
  }

  // The store calls are started here and handed to guardPromise: the same deadline and
  // 503 as `guard(() => ...)`, without a closure per request. A store that throws
  // instead of rejecting is unavailable too.
  function checkRevocation (claims: AccessTokenClaims): Promise<RevocationState> {
    let pending: Promise<RevocationState>
    try {
      pending = revocationStore.check(claims.sub, claims.jti, claims.sid)
    } catch (err) {
      pending = Promise.reject(err)
    }
    return guardPromise(pending, timeoutMs)
  }

  async function isCurrentWithLookup (claims: AccessTokenClaims): Promise<boolean> {
    // The core's getVersion reads the app's record when a lookup is configured.
    const [state, version] = await Promise.all([checkRevocation(claims), getVersion(claims.sub)])
    return !state.tokenRevoked && !state.sessionRevoked && version === claims.ver
  }

  async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization
    const token = header === undefined ? null : bearerToken(header)
    if (token === null) {
      reply.header('www-authenticate', 'Bearer')
      throw new TokenMissingError()
    }
    if ((header as string).length > MAX_AUTHORIZATION_LENGTH) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw new TokenInvalidError()
    }
    let claims: AccessTokenClaims
    try {
      if (token.length === 0) throw new TokenInvalidError()
      claims = verify(token)
    } catch (err) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw err
    }
    // One store call answers jti, session and version together: one round trip.
    let current: boolean
    if (lookupVersion === undefined) {
      const state = await checkRevocation(claims)
      current = !state.tokenRevoked && !state.sessionRevoked && state.version === claims.ver
    } else {
      current = await isCurrentWithLookup(claims)
    }
    if (!current) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw new TokenRevokedError()
    }
    request.auth = {
      userId: claims.sub,
      sessionId: claims.sid,
      tokenId: claims.jti,
      version: claims.ver,
      expiresAt: claims.exp * 1000,
      claims
    }
  }

  async function revokeAccessToken (claims: Pick<AccessTokenClaims, 'sub' | 'jti' | 'exp'>): Promise<void> {
    checkUserId(claims?.sub, 'claims.sub')
    if (typeof claims.jti !== 'string' || claims.jti.length === 0) throw new TypeError('claims.jti must be a non-empty string')
    if (!Number.isFinite(claims.exp)) throw new TypeError('claims.exp must be a number of seconds since the epoch')
    // Kept exactly as long as the token could still be accepted.
    await guard(() => revocationStore.revokeToken(claims.sub, claims.jti, claims.exp * 1000))
  }

  fastify.decorate('authenticate', authenticate)
  fastify.decorate('revokeAccessToken', revokeAccessToken)
}

/**
 * `fastify.authenticate`: the `onRequest` hook that verifies the Bearer access token
 * and rejects a revoked `jti`, a revoked session or a stale token version, with one
 * store call. Also decorates `fastify.revokeAccessToken(claims)`.
 */
export const revocableJwtAuthenticate = fp(fastifyRevocableJwtAuthenticate, {
  fastify: '5.x',
  name: AUTHENTICATE_PLUGIN_NAME,
  dependencies: [CORE_PLUGIN_NAME]
})
export default revocableJwtAuthenticate
