import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { checkOptionNames, pick } from '../options.js'
import { ACCESS_TOKEN_OPTION_NAMES, type AccessTokenOptions } from './access-token-options.js'
import { revocableJwtAuthenticate } from './authenticate.js'
import { TOKEN_VERSIONS_OPTION_NAMES, revocableJwtRevocation, revocableJwtTokenVersions, type TokenVersionsOptions } from './revocation.js'

export const RESOURCE_SERVER_PLUGIN_NAME = 'fastify-revocable-jwt-resource-server'

/** Options of a resource server: how to verify (public keys only) and where revocation lives. */
export interface ResourceServerOptions extends Omit<AccessTokenOptions, 'secret' | 'accessTokenTtl' | 'jwksRoute'>, TokenVersionsOptions {
  /**
   * Set to `false` to run without the auth service's revocation store: tokens are then
   * honoured until they expire, whatever was revoked. Otherwise give `redis` or `postgres`
   * (or another `revocationStore`) pointing at the store the auth service writes.
   * @default true
   */
  revocation?: boolean
}

const VERIFY_OPTION_NAMES = ACCESS_TOKEN_OPTION_NAMES.filter(name => name !== 'secret' && name !== 'accessTokenTtl' && name !== 'jwksRoute')
export const RESOURCE_SERVER_OPTION_NAMES = [...VERIFY_OPTION_NAMES, ...TOKEN_VERSIONS_OPTION_NAMES, 'revocation'] as const

const fastifyRevocableJwtResourceServer: FastifyPluginAsync<ResourceServerOptions> = async function fastifyRevocableJwtResourceServer (fastify, opts) {
  checkOptionNames(opts, RESOURCE_SERVER_OPTION_NAMES, 'revocableJwtResourceServer')
  if ((opts.keys ?? []).some(key => key?.secret !== undefined)) {
    throw new TypeError('revocableJwtResourceServer verifies only: give keys with their publicKey and no secret (the private key stays with the auth service)')
  }
  if (opts.jwksUrl === undefined && opts.keys === undefined) {
    throw new TypeError('revocableJwtResourceServer needs the auth service\'s public keys: jwksUrl (its JWKS) or keys ({ kid, publicKey })')
  }
  const revocation = opts.revocation ?? true
  if (typeof revocation !== 'boolean') throw new TypeError('revocation must be a boolean')
  if (revocation) {
    if (opts.redis === undefined && opts.postgres === undefined && opts.revocationStore === undefined) {
      // A store of its own would never see what the auth service revokes.
      throw new TypeError('revocableJwtResourceServer checks revocation in the auth service\'s store: give redis (or postgres, or revocationStore) pointing at it, or revocation: false to honour tokens until they expire')
    }
    await fastify.register(revocableJwtTokenVersions, pick(opts, TOKEN_VERSIONS_OPTION_NAMES))
    await fastify.register(revocableJwtRevocation, {})
  }
  await fastify.register(revocableJwtAuthenticate, pick(opts, VERIFY_OPTION_NAMES))
}

/**
 * A resource server: verifies the auth service's access tokens with its public keys
 * (its JWKS, or configured public keys) and enforces the same revocation through the
 * shared store, in one round trip. No private key, secret or refresh token here.
 *
 * @example
 * await app.register(revocableJwtResourceServer, {
 *   jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
 *   redis: process.env.REDIS_URL
 * })
 * app.get('/me', { onRequest: app.revocableJwt.authenticate }, async (request) => ({ id: request.auth!.userId }))
 */
export const revocableJwtResourceServer = fp(fastifyRevocableJwtResourceServer, {
  fastify: '5.x',
  name: RESOURCE_SERVER_PLUGIN_NAME
})
