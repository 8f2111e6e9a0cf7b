import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { RevocableJwtOptions } from '../types/index.js'
import { revocableJwtCore } from './core.js'
import { revocableJwtTokenVersions } from './token-versions.js'
import { revocableJwtAuthenticate } from './authenticate.js'
import { revocableJwtIssuance } from './issuance.js'
import { revocableJwtRefreshRoutes } from './refresh-routes.js'

const fastifyRevocableJwt: FastifyPluginAsync<RevocableJwtOptions> = async function fastifyRevocableJwt (fastify, opts) {
  const { routes, ...coreOptions } = opts
  await fastify.register(revocableJwtCore, coreOptions)
  await fastify.register(revocableJwtTokenVersions)
  await fastify.register(revocableJwtAuthenticate)
  await fastify.register(revocableJwtIssuance)
  await fastify.register(revocableJwtRefreshRoutes, routes ?? {})
}

/**
 * The umbrella plugin: core, token versions, `fastify.authenticate`, token issuance
 * and the refresh routes, configured by one options object.
 */
export const revocableJwt = fp(fastifyRevocableJwt, {
  fastify: '5.x',
  name: 'fastify-revocable-jwt'
})
export default revocableJwt

export { revocableJwtCore, CORE_PLUGIN_NAME } from './core.js'
export { revocableJwtTokenVersions, TOKEN_VERSIONS_PLUGIN_NAME } from './token-versions.js'
export { revocableJwtAuthenticate, AUTHENTICATE_PLUGIN_NAME } from './authenticate.js'
export { revocableJwtIssuance, ISSUANCE_PLUGIN_NAME } from './issuance.js'
export { revocableJwtRefreshRoutes, REFRESH_ROUTES_PLUGIN_NAME } from './refresh-routes.js'
export { MemoryRevocationStore, MemoryRefreshTokenStore, type MemoryStoreOptions } from './stores/memory.js'
export { RedisRevocationStore, RedisRefreshTokenStore, type RedisStoreOptions } from './stores/redis.js'
export {
  MongoRefreshTokenStore,
  DEFAULT_MONGO_COLLECTION_NAME,
  type MongoRefreshTokenStoreOptions,
  type RefreshTokenDocument
} from './stores/mongodb.js'
export {
  TokenMissingError,
  TokenInvalidError,
  TokenExpiredError,
  TokenRevokedError,
  RefreshTokenMissingError,
  RefreshTokenInvalidError,
  RefreshTokenReusedError,
  SessionNotFoundError,
  CrossSiteRequestError,
  AuthStoreUnavailableError,
  InvalidCredentialsError
} from './errors.js'
export {
  parseDuration,
  DEFAULT_ACCESS_TOKEN_TTL,
  DEFAULT_REFRESH_TOKEN_TTL,
  DEFAULT_REFRESH_REUSE_GRACE,
  DEFAULT_STORE_TIMEOUT,
  DEFAULT_PREFIX,
  DEFAULT_COOKIE_NAME,
  DEFAULT_TOKEN_TYPE,
  DEFAULT_ALGORITHM,
  DEFAULT_REDIS_KEY_PREFIX
} from './options.js'
export type {
  AccessTokenAlgorithm,
  AccessTokenClaims,
  AccessTokenKey,
  AuthContext,
  Duration,
  IssuedTokens,
  KeyMaterial,
  NormalizedOptions,
  RefreshCookieOptions,
  RefreshRoutesOptions,
  RefreshTokenRecord,
  RefreshTokenStore,
  RevocableJwtCoreOptions,
  RevocableJwtEvents,
  RevocableJwtNamespace,
  RevocableJwtOptions,
  RevocableJwtRedisOptions,
  RevocationState,
  RevocationStore,
  RotateInput,
  RotateResult,
  SessionRecord,
  TokenSubject
} from '../types/index.js'
