import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { AccessTokenClaims } from '../types/index.js'
import { TokenInvalidError, TokenMissingError, TokenRevokedError } from './errors.js'
import { CORE_PLUGIN_NAME, checkUserId, getInternals } from './core.js'

export const AUTHENTICATE_PLUGIN_NAME = 'fastify-revocable-jwt-authenticate'
/** Longest `Authorization` header looked at; anything longer is refused unparsed. */
export const MAX_AUTHORIZATION_LENGTH = 8192

const BEARER = /^Bearer +/i

const fastifyRevocableJwtAuthenticate: FastifyPluginAsync = async function fastifyRevocableJwtAuthenticate (fastify) {
  const { verifyAccessToken, revocationStore, guard, options } = getInternals(fastify)
  const lookupVersion = options.getTokenVersion

  function check (claims: AccessTokenClaims): Promise<boolean> {
    // One store call answers jti, session and version together: one round trip.
    if (lookupVersion === undefined) {
      return guard(() => revocationStore.check(claims.sub, claims.jti, claims.sid)).then(state =>
        !state.tokenRevoked && !state.sessionRevoked && state.version === claims.ver)
    }
    return Promise.all([
      guard(() => revocationStore.check(claims.sub, claims.jti, claims.sid)),
      guard(() => lookupVersion(claims.sub))
    ]).then(([state, version]) => !state.tokenRevoked && !state.sessionRevoked && version === claims.ver)
  }

  async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization
    if (header === undefined || header.length === 0 || !BEARER.test(header)) {
      reply.header('www-authenticate', 'Bearer')
      throw new TokenMissingError()
    }
    if (header.length > MAX_AUTHORIZATION_LENGTH) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw new TokenInvalidError()
    }
    const token = header.replace(BEARER, '').trim()
    let claims: AccessTokenClaims
    try {
      if (token.length === 0) throw new TokenInvalidError()
      claims = verifyAccessToken(token)
    } catch (err) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw err
    }
    if (!await check(claims)) {
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
