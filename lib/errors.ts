import createError from '@fastify/error'

/** No `Authorization: Bearer` header on a protected route. */
export const TokenMissingError = createError('TOKEN_MISSING', 'Authorization header with a Bearer token is required', 401)
/** The access token's signature, algorithm, type, issuer, audience or shape is wrong. */
export const TokenInvalidError = createError('TOKEN_INVALID', 'Access token is invalid', 401)
/** The access token has expired: refresh and retry. */
export const TokenExpiredError = createError('TOKEN_EXPIRED', 'Access token has expired', 401)
/** The access token, its session or its token version has been revoked. */
export const TokenRevokedError = createError('TOKEN_REVOKED', 'Access token has been revoked', 401)
/** The refresh route was called without the refresh cookie. */
export const RefreshTokenMissingError = createError('REFRESH_TOKEN_MISSING', 'Refresh token cookie is missing', 401)
/** The refresh token is malformed, unknown, expired or belongs to a revoked session. */
export const RefreshTokenInvalidError = createError('REFRESH_TOKEN_INVALID', 'Refresh token is invalid', 401)
/** A rotated refresh token was presented after the grace window: the session has been revoked. */
export const RefreshTokenReusedError = createError('REFRESH_TOKEN_REUSED', 'Refresh token was already used; the session has been revoked', 401)
/** The session does not exist or belongs to another user. */
export const SessionNotFoundError = createError('SESSION_NOT_FOUND', 'Session not found', 404)
/** A cookie-authenticated route was called from another origin. */
export const CrossSiteRequestError = createError('CROSS_SITE_REQUEST', 'Cross-site request refused', 403)
/** A store could not be reached in time; the request is refused (fail closed). */
export const AuthStoreUnavailableError = createError('AUTH_STORE_UNAVAILABLE', 'Authentication store unavailable', 503)
/** Wrong email or password (for login handlers). */
export const InvalidCredentialsError = createError('INVALID_CREDENTIALS', 'Invalid email or password', 401)
