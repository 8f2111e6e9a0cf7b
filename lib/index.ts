import { revocableJwt } from './plugins/umbrella.js'

export default revocableJwt
export { revocableJwt, type RevocableJwtOptions } from './plugins/umbrella.js'
export {
  revocableJwtRevocation,
  revocableJwtTokenVersions,
  REVOCATION_PLUGIN_NAME,
  TOKEN_VERSIONS_PLUGIN_NAME,
  type RevocationOptions,
  type RevocationStoreOptions,
  type TokenVersionsOptions
} from './plugins/revocation.js'
export { revocableJwtAuthenticate, AUTHENTICATE_PLUGIN_NAME, type AuthenticateOptions } from './plugins/authenticate.js'
export { type AccessTokenOptions, type AccessTokenKey, type JwksFetchOptions, DEFAULT_ALGORITHM } from './plugins/access-token-options.js'
export { revocableJwtResourceServer, RESOURCE_SERVER_PLUGIN_NAME, type ResourceServerOptions } from './plugins/resource-server.js'
export { revocableJwtIssuance, ISSUANCE_PLUGIN_NAME, type IssuanceOptions } from './plugins/issuance.js'
export { revocableJwtRefreshRoutes, REFRESH_ROUTES_PLUGIN_NAME, type RefreshRoutesOptions } from './plugins/refresh-routes.js'
export {
  revocableJwtCookieSession,
  COOKIE_SESSION_PLUGIN_NAME,
  DEFAULT_PAGE_ACCESS_COOKIE,
  DEFAULT_PAGE_REFRESH_COOKIE,
  type CookieSessionOptions,
  type CookieSessionHookOptions,
  type OnMissingSession
} from './plugins/cookie-session.js'
export type { PageCookieOptions } from './plugins/cookie-session-options.js'
export { RefreshCookie, type RefreshCookieOptions } from './plugins/refresh-cookie.js'
export type { RevocableJwtRedisOptions, NearCacheOptions } from './plugins/redis-options.js'
export type { RevocableJwtPostgresOptions } from './plugins/postgres-option.js'
export { MemoryRevocationStore, MemoryRefreshTokenStore, type MemoryStoreOptions } from './stores/memory.js'
export type {
  CreateSessionInput,
  CreateSessionResult,
  RefreshTokenStore,
  RevocationState,
  RevocationStore,
  RotateInput,
  RotationFacts,
  SessionRecord,
  TokenFacts
} from './stores/types.js'
export { AccessTokens, type AccessTokenClaims, type AccessTokenSubject } from './domain/access-tokens.js'
export type { AccessTokenAlgorithm, KeyMaterial, PublicJwk } from './domain/keys.js'
export { Revocation, type TokenVersionSource } from './domain/revocation.js'
export { Sessions, type ClientInfo, type StartedSession, type RefreshedSession } from './domain/sessions.js'
export { decideRotation, type RotationDecision, type RotationContext } from './domain/rotation-policy.js'
export { TokenIssuer, type IssuedTokens, type SessionTokens, type ClaimsSource } from './domain/token-issuer.js'
export { AuthEvents, type RevocableJwtEvents, type SessionEndReason } from './domain/events.js'
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
  type Duration,
  DEFAULT_ACCESS_TOKEN_TTL,
  DEFAULT_REFRESH_TOKEN_TTL,
  DEFAULT_REFRESH_REUSE_GRACE,
  DEFAULT_STORE_TIMEOUT,
  DEFAULT_CLOCK_TOLERANCE,
  DEFAULT_VERIFY_CACHE_SIZE,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_PREFIX,
  DEFAULT_COOKIE_NAME,
  DEFAULT_TOKEN_TYPE
} from './options.js'
export type { AuthContext, AuthHook, ForeignTokenClaims, RevocableJwtNamespace, TokenSubject } from './types.js'
