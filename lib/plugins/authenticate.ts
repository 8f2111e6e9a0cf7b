import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { AccessTokens, type AccessTokenClaims } from '../domain/access-tokens.js'
import type { Revocation } from '../domain/revocation.js'
import { TokenInvalidError, TokenMissingError, TokenRevokedError } from '../errors.js'
import { checkOptionNames } from '../options.js'
import { ACCESS_TOKEN_OPTION_NAMES, resolveAccessTokenOptions, type AccessTokenOptions } from './access-token-options.js'
import { isProvided, provide, useNamespace } from './namespace.js'

export const AUTHENTICATE_PLUGIN_NAME = 'fastify-revocable-jwt-authenticate'
/** Longest `Authorization` header looked at; anything longer is refused unparsed. */
export const MAX_AUTHORIZATION_LENGTH = 8192

/** Options of the authenticate plugin: the access tokens it verifies (and, with a private key, signs). */
export type AuthenticateOptions = AccessTokenOptions

const SPACE = 32

/**
 * The token of a `Bearer` header (scheme case-insensitive, one or more spaces, then
 * the token, trimmed), or null when the header is not a Bearer one. Same result as
 * `/^Bearer +/i` and `.replace().trim()`, without a regex run and a copy per request.
 */
export function bearerToken (header: string): string | null {
  if (header.length < 7 || header.charCodeAt(6) !== SPACE) return null
  if (!header.startsWith('Bearer') && header.slice(0, 6).toLowerCase() !== 'bearer') return null
  let start = 7
  while (start < header.length && header.charCodeAt(start) === SPACE) start++
  return header.slice(start).trim()
}

const fastifyRevocableJwtAuthenticate: FastifyPluginAsync<AuthenticateOptions> = async function fastifyRevocableJwtAuthenticate (fastify, opts) {
  checkOptionNames(opts, ACCESS_TOKEN_OPTION_NAMES, 'revocableJwtAuthenticate')
  const accessTokens = new AccessTokens(resolveAccessTokenOptions(opts ?? {}))
  const namespace = useNamespace(fastify)
  if (fastify.hasRequestDecorator('auth')) {
    throw new Error('revocableJwtAuthenticate: request.auth is already decorated by another plugin; fastify-revocable-jwt puts the verified token there')
  }
  fastify.decorateRequest('auth', null)

  // The checks registered around this plugin, whatever the order: known once the app is ready.
  let revocation: Revocation | null = null
  fastify.addHook('onReady', async function findRevocationChecks () {
    revocation = isProvided(namespace, 'revocation') ? namespace.revocation : null
    if (revocation === null) {
      fastify.log.warn('fastify-revocable-jwt: authenticate runs without a revocation check: access tokens stay valid until they expire')
    }
  })

  async function verify (token: string): Promise<AccessTokenClaims> {
    return await accessTokens.verify(token)
  }

  async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization
    const token = header === undefined ? null : bearerToken(header)
    if (token === null) {
      reply.header('www-authenticate', 'Bearer')
      throw new TokenMissingError()
    }
    let claims: AccessTokenClaims
    try {
      if (token.length === 0 || (header as string).length > MAX_AUTHORIZATION_LENGTH) throw new TokenInvalidError()
      const verified = accessTokens.verify(token)
      // A promise only when a key has to come from a remote JWKS.
      claims = verified instanceof Promise ? await verified : verified
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'TOKEN_EXPIRED' || code === 'TOKEN_INVALID') {
        reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${code === 'TOKEN_EXPIRED' ? 'expired' : 'invalid'}"`)
      }
      throw err
    }
    // One store call answers jti, session and version together: one round trip.
    if (revocation !== null && !await revocation.isCurrentToken(claims.sub, claims.jti, claims.sid, claims.ver)) {
      reply.header('www-authenticate', 'Bearer error="invalid_token", error_description="revoked"')
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

  if (opts.jwksRoute !== undefined) {
    fastify.get(opts.jwksRoute, async function publishJwks (_request, reply) {
      const jwks = accessTokens.jwks()
      // An HMAC secret is never published: nothing to serve.
      if (jwks === null) return reply.callNotFound()
      // Resource servers may keep it a while: a new key is published before it signs.
      reply.header('cache-control', 'public, max-age=300')
      return jwks
    })
  }

  provide(namespace, {
    accessTokens,
    authenticate,
    verifyAccessToken: verify,
    jwks: () => accessTokens.jwks()
  })
}

/**
 * Access tokens: `fastify.revocableJwt.authenticate`, the `onRequest` hook that
 * verifies the Bearer access token and refuses a revoked `jti`, a revoked session or
 * a stale version (with the checks registered, in one store call), then sets
 * `request.auth`. Holds the keys that sign and verify them.
 *
 * @example
 * const { authenticate } = app.revocableJwt
 * app.get('/me', { onRequest: authenticate }, async (request) => ({ id: request.auth!.userId }))
 */
export const revocableJwtAuthenticate = fp(fastifyRevocableJwtAuthenticate, {
  fastify: '5.x',
  name: AUTHENTICATE_PLUGIN_NAME
})
