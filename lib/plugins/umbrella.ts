import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { checkOptionNames, pick } from '../options.js'
import { ACCESS_TOKEN_OPTION_NAMES, type AccessTokenOptions } from './access-token-options.js'
import { revocableJwtAuthenticate } from './authenticate.js'
import { ISSUANCE_OPTION_NAMES, revocableJwtIssuance, type IssuanceOptions } from './issuance.js'
import { REFRESH_ROUTES_OPTION_NAMES, revocableJwtRefreshRoutes, type RefreshRoutesOptions } from './refresh-routes.js'
import {
  REVOCATION_STORE_OPTION_NAMES,
  TOKEN_VERSIONS_OPTION_NAMES,
  revocableJwtRevocation,
  revocableJwtTokenVersions,
  type TokenVersionsOptions
} from './revocation.js'

/** Options of the umbrella plugin: those of every plugin it registers. */
export interface RevocableJwtOptions extends AccessTokenOptions, TokenVersionsOptions, IssuanceOptions {
  /** Which routes besides `POST {prefix}/refresh` to register. */
  routes?: Omit<RefreshRoutesOptions, 'allowedOrigins'>
  /**
   * Origins (`scheme://host[:port]`) besides the service's own that may call the
   * cookie-authenticated routes (refresh, logout).
   * @default []
   */
  allowedOrigins?: string[]
}

export const UMBRELLA_OPTION_NAMES = [...new Set([
  ...ACCESS_TOKEN_OPTION_NAMES, ...TOKEN_VERSIONS_OPTION_NAMES, ...ISSUANCE_OPTION_NAMES, 'routes', 'allowedOrigins'
])]

const fastifyRevocableJwt: FastifyPluginAsync<RevocableJwtOptions> = async function fastifyRevocableJwt (fastify, opts) {
  checkOptionNames(opts, UMBRELLA_OPTION_NAMES, 'fastify-revocable-jwt')
  const { routes = {}, allowedOrigins } = opts
  checkOptionNames(routes, REFRESH_ROUTES_OPTION_NAMES.filter(name => name !== 'allowedOrigins'), 'fastify-revocable-jwt: routes')
  // The token-version plugin sets up the revocation store both checks share.
  await fastify.register(revocableJwtTokenVersions, pick(opts, TOKEN_VERSIONS_OPTION_NAMES))
  await fastify.register(revocableJwtRevocation, {})
  await fastify.register(revocableJwtAuthenticate, pick(opts, ACCESS_TOKEN_OPTION_NAMES))
  await fastify.register(revocableJwtIssuance, pick(opts, ISSUANCE_OPTION_NAMES))
  await fastify.register(revocableJwtRefreshRoutes, { ...routes, ...(allowedOrigins !== undefined && { allowedOrigins }) })
}

/**
 * The umbrella plugin: the revocation and token-version checks, access tokens
 * (`fastify.revocableJwt.authenticate`), token issuance (`reply.issueTokens`) and the
 * refresh routes, configured by one options object.
 *
 * @example
 * await app.register(revocableJwt, { secret: process.env.JWT_SECRET, redis: process.env.REDIS_URL })
 * app.get('/me', { onRequest: app.revocableJwt.authenticate }, async (request) => ({ id: request.auth!.userId }))
 */
export const revocableJwt = fp(fastifyRevocableJwt, {
  fastify: '5.x',
  name: 'fastify-revocable-jwt'
})

export { REVOCATION_STORE_OPTION_NAMES }
