/**
 * The shared vocabulary of the plugins and the `declare module 'fastify'` augmentation:
 * the one namespace decorator `fastify.revocableJwt`, `request.auth` and the two reply
 * decorators. Types of options, stores and the domain live beside their code.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AccessTokenClaims, AccessTokens } from './domain/access-tokens.js'
import type { AuthEvents } from './domain/events.js'
import type { PublicJwk } from './domain/keys.js'
import type { Revocation } from './domain/revocation.js'
import type { Sessions } from './domain/sessions.js'
import type { IssuedTokens, SessionTokens, TokenIssuer } from './domain/token-issuer.js'
import type { CookieSessionHookOptions } from './plugins/cookie-session.js'
import type { RefreshCookie } from './plugins/refresh-cookie.js'
import type { RefreshTokenStore, RevocationStore, SessionRecord } from './stores/types.js'

/** An `onRequest` hook of the package. */
export type AuthHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/** What `authenticate` puts on `request.auth` after a successful check. */
export interface AuthContext {
  /** The `sub` claim. */
  userId: string
  /** The `sid` claim. */
  sessionId: string
  /** The `jti` claim. */
  tokenId: string
  /** The `ver` claim. */
  version: number
  /** When the access token expires, in milliseconds since the epoch. */
  expiresAt: number
  /** Every claim of the verified token (frozen). */
  claims: AccessTokenClaims
}

/** The user an access/refresh token pair is issued to. */
export interface TokenSubject {
  /** The user id, written as `sub`: a non-empty, well-formed string of at most 128 bytes (UTF-8). */
  id: string
  /**
   * The user's token version read with `fastify.revocableJwt.getTokenVersion(id)`
   * **before** the credentials were read: a password change racing the login then
   * leaves this session stale. Without it, the version is read at issue time.
   * @default the version read now
   */
  tokenVersion?: number | undefined
}

/** The claims of a token the app signed itself, as the revocation checks read them. */
export interface ForeignTokenClaims {
  /** The user id. Required. */
  sub: string
  /** The token id: without one a token can only be revoked with all of its user's. */
  jti?: string
  /** The session id, when the app's tokens have one. */
  sid?: string
  /** The user's token version when issued; a token without it counts as version 0. */
  ver?: number
  /** Expiry, seconds since the epoch: a revocation is kept until then. */
  exp?: number
}

/**
 * The `fastify.revocableJwt` namespace. Each member is provided by one plugin; using
 * one whose plugin is not registered throws an error naming the plugin.
 */
export interface RevocableJwtNamespace {
  /** Emits `refreshTokenReused`, `sessionRevoked`, `tokenVersionBumped`. */
  readonly events: AuthEvents

  // --- the revocation and token-version checks (revocableJwtRevocation / revocableJwtTokenVersions)
  /** Revoked ids and versions, checked in one store call (the domain object). */
  readonly revocation: Revocation
  readonly revocationStore: RevocationStore
  /**
   * `onRequest` hook for tokens the app verifies itself (its own @fastify/jwt): reads
   * the verified claims (`request.user` by default) and refuses a revoked `jti` or
   * session, or a stale version, with `401 TOKEN_REVOKED`. Place it after the app's own
   * verification hook.
   */
  readonly checkRevocation: AuthHook
  /** Revoke one access token until it expires: this package's or the app's own (`sub`, `jti`, `exp`). */
  revokeAccessToken (claims: { sub: string, jti: string, exp: number }): Promise<void>
  /** The user's current token version. */
  getTokenVersion (userId: string): Promise<number>
  /** Invalidate every access and refresh token of the user issued before now. Returns the new version. */
  bumpTokenVersion (userId: string): Promise<number>

  // --- access tokens (revocableJwtAuthenticate)
  readonly accessTokens: AccessTokens
  /** `onRequest` hook: verifies the Bearer access token and refuses a revoked `jti`, session or stale version; sets `request.auth`. */
  readonly authenticate: AuthHook
  /** Verify an access token's signature, algorithm, `typ`, issuer, audience and claims (no revocation check). */
  verifyAccessToken (token: string): Promise<AccessTokenClaims>
  /** The public keys that verify access tokens, as a JWKS (`null` with an HMAC algorithm: nothing to publish). */
  jwks (): { keys: PublicJwk[] } | null

  // --- sessions (revocableJwtIssuance)
  readonly sessions: Sessions
  readonly refreshTokenStore: RefreshTokenStore
  /** Logins and refreshes: the token pair of a session (for apps that write their own routes). */
  readonly tokenIssuer: TokenIssuer
  /** The refresh cookie: set, clear, read (for apps that write their own routes). */
  readonly refreshCookie: RefreshCookie
  /** Start a session from a login handler; the same as `reply.issueTokens(subject)`. */
  issueTokens (reply: FastifyReply, subject: TokenSubject): Promise<IssuedTokens>
  /**
   * Start a session and return its token pair without setting any cookie: for a
   * transport of the app's own (`reply.issueTokens` sets the refresh routes' cookie).
   */
  startSession (request: FastifyRequest, subject: TokenSubject): Promise<SessionTokens>
  /** Revoke one session of the user; false (and nothing written) when the user has no such session. */
  revokeSession (userId: string, sessionId: string): Promise<boolean>
  /** Log the user out everywhere: bump the token version and delete every session. */
  logoutAll (userId: string): Promise<number>
  /** The live sessions of the user, oldest first. */
  listSessions (userId: string): Promise<SessionRecord[]>
  /**
   * Change what a login checks (a password) so that no session started from the old
   * credentials outlives the change: bumps the version, runs `write`, and bumps again,
   * so that a login that read the old credentials before `write` ends stale whatever
   * the order of the app's own calls. Returns the final version.
   */
  changeCredentials (userId: string, write: () => Promise<void>): Promise<number>

  // --- the cookie transport for server-rendered pages (revocableJwtCookieSession)
  /**
   * Make an `onRequest` hook for page routes: reads the access token from its HttpOnly
   * cookie and checks it as `authenticate` does; missing or expired, exchanges the
   * refresh cookie in the request and sets both new cookies; refuses a cross-site unsafe
   * request with `403 CROSS_SITE_REQUEST` before reading any cookie. Sets `request.auth`.
   */
  cookieSession (options?: CookieSessionHookOptions): AuthHook
  /** `onRequest` hook: refuses a cross-site unsafe request (for forms that need no session, such as the login form). */
  readonly refuseCrossSite: AuthHook
  /** Start a session from a login form: sets the access and refresh cookies of the pages. */
  startCookieSession (reply: FastifyReply, subject: TokenSubject): Promise<{ userId: string, sessionId: string }>
  /** Log out: clear both cookies and, when `request.auth` holds a session, revoke it and its access token. True when a session was ended. */
  endCookieSession (request: FastifyRequest, reply: FastifyReply): Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The package's namespace: hooks, stores, events and the domain objects. */
    revocableJwt: RevocableJwtNamespace
  }
  interface FastifyRequest {
    /** Set by `fastify.revocableJwt.authenticate` (or a `cookieSession` hook); null on requests they have not checked. */
    auth: AuthContext | null
  }
  interface FastifyReply {
    /** Start a session: sign an access token, mint a refresh token, store its hash and set the cookie. */
    issueTokens (subject: TokenSubject): Promise<IssuedTokens>
    /** Clear the refresh cookie. */
    clearRefreshCookie (): FastifyReply
  }
}
