import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { AccessTokenClaims } from '../domain/access-tokens.js'
import { TokenInvalidError, TokenMissingError, TokenRevokedError } from '../errors.js'
import { checkOptionNames } from '../options.js'
import type { AuthContext, AuthHook, TokenSubject } from '../types.js'
import { AUTHENTICATE_PLUGIN_NAME, MAX_AUTHORIZATION_LENGTH } from './authenticate.js'
import { resolvePageCookie, type PageCookieOptions } from './cookie-session-options.js'
import { ISSUANCE_PLUGIN_NAME, clientInfo } from './issuance.js'
import { provide } from './namespace.js'
import { RefreshCookie } from './refresh-cookie.js'
import { crossSiteGuard, resolveAllowedOrigins } from './refresh-routes.js'

export const COOKIE_SESSION_PLUGIN_NAME = 'fastify-revocable-jwt-cookie-session'
export const DEFAULT_PAGE_ACCESS_COOKIE = 'page_access_token'
export const DEFAULT_PAGE_REFRESH_COOKIE = 'page_refresh_token'

/** Options of the cookie transport for server-rendered pages. */
export interface CookieSessionOptions {
  /**
   * Where the page routes live: the default `Path` of both cookies, so that neither
   * reaches the rest of the service.
   * @default '/'
   */
  path?: string
  /** The access-token cookie. `maxAge` is the access token's lifetime. */
  accessCookie?: PageCookieOptions
  /** The session's refresh-token cookie (not the one of the refresh routes). `maxAge` is the refresh token's lifetime. */
  refreshCookie?: PageCookieOptions
  /**
   * Where `cookieSession({ onMissing: 'redirect' })` sends a request without a valid
   * session (303), unless the hook names its own.
   * @default undefined
   */
  loginPath?: string
  /**
   * Origins (`scheme://host[:port]`) besides the service's own that may send unsafe
   * requests (POST, PUT, PATCH, DELETE…) to the cookie-authenticated routes.
   * @default []
   */
  allowedOrigins?: string[]
}

export const COOKIE_SESSION_OPTION_NAMES = ['path', 'accessCookie', 'refreshCookie', 'loginPath', 'allowedOrigins'] as const

/** What a `cookieSession` hook does with a request that has no valid session. */
export type OnMissingSession = 'redirect' | 'error' | 'continue'

/** Options of one `cookieSession` hook. */
export interface CookieSessionHookOptions {
  /**
   * A request without a valid session (no cookie, or an invalid, revoked or unrefreshable
   * one): `'redirect'` answers 303 to `loginPath` (page routes); `'error'` answers 401
   * with the codes of `authenticate` (`TOKEN_MISSING`, `TOKEN_INVALID`, `TOKEN_EXPIRED`,
   * `TOKEN_REVOKED`), or of the refresh route when the silent refresh was refused
   * (`REFRESH_TOKEN_INVALID`, `REFRESH_TOKEN_REUSED`); `'continue'` leaves `request.auth`
   * null and lets the route decide (pages that guests may see too).
   * @default 'error'
   */
  onMissing?: OnMissingSession
  /**
   * Where `'redirect'` sends the request: a path on this service.
   * @default the plugin's `loginPath`
   */
  loginPath?: string
}

const HOOK_OPTION_NAMES = ['onMissing', 'loginPath'] as const
const ON_MISSING: readonly OnMissingSession[] = ['redirect', 'error', 'continue']
/** A path on this service: `//host` would be a redirect to another site. */
const LOCAL_PATH = /^\/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
/** Codes after which a cookie is known to be worthless: the browser should drop it. */
const DEAD_ACCESS = new Set(['TOKEN_INVALID', 'TOKEN_REVOKED'])
const DEAD_REFRESH = new Set(['REFRESH_TOKEN_INVALID', 'REFRESH_TOKEN_REUSED'])

function checkLocalPath (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !LOCAL_PATH.test(value)) throw new TypeError(`${name} must be a path on this service like "/login", got ${JSON.stringify(value)}`)
  return value
}

function authContext (claims: AccessTokenClaims): AuthContext {
  return { userId: claims.sub, sessionId: claims.sid, tokenId: claims.jti, version: claims.ver, expiresAt: claims.exp * 1000, claims }
}

const fastifyRevocableJwtCookieSession: FastifyPluginAsync<CookieSessionOptions> = async function fastifyRevocableJwtCookieSession (fastify, opts) {
  checkOptionNames(opts, COOKIE_SESSION_OPTION_NAMES, 'revocableJwtCookieSession')
  const namespace = fastify.revocableJwt
  const { accessTokens, revocation, tokenIssuer, sessions, refreshCookie: routesCookie } = namespace
  const path = checkLocalPath(opts.path ?? '/', 'path') as string
  if (path.includes('?')) throw new TypeError(`path must be a path like "/app", got ${JSON.stringify(opts.path)}`)
  const defaults = { path, secure: routesCookie.settings.secure }
  const access = new RefreshCookie(resolvePageCookie(opts.accessCookie, 'accessCookie', { ...defaults, name: DEFAULT_PAGE_ACCESS_COOKIE }, Math.floor(accessTokens.ttlMs / 1000)), path, fastify)
  const refresh = new RefreshCookie(resolvePageCookie(opts.refreshCookie, 'refreshCookie', { ...defaults, name: DEFAULT_PAGE_REFRESH_COOKIE }, routesCookie.settings.maxAgeSeconds), path, fastify)
  if (access.settings.name === refresh.settings.name) throw new TypeError('accessCookie.name and refreshCookie.name must differ')
  if (refresh.settings.name === routesCookie.settings.name) {
    throw new TypeError(`refreshCookie.name must differ from the refresh routes' cookie ("${routesCookie.settings.name}"): each session keeps its own`)
  }
  const loginPath = checkLocalPath(opts.loginPath, 'loginPath')
  const guard = crossSiteGuard(resolveAllowedOrigins(opts.allowedOrigins))

  async function refuseCrossSite (request: FastifyRequest): Promise<void> {
    if (!SAFE_METHODS.has(request.method)) await guard(request)
  }

  /** Set both cookies of a session: the access token and its refresh token. */
  function setCookies (reply: FastifyReply, accessToken: string, refreshToken: string): void {
    access.set(reply, accessToken)
    refresh.set(reply, refreshToken)
    reply.header('cache-control', 'no-store')
  }

  /** The access cookie's token, or null when there is none to trust (missing, or several: one may be planted). */
  function presentedAccessToken (request: FastifyRequest, reply: FastifyReply): string | null {
    const presented = access.read(request)
    if (presented.kind === 'one') return presented.value
    // Never choose between two access tokens: a planted one may be another account's.
    if (presented.kind === 'conflict') access.expirePlanted(request, reply)
    return null
  }

  /**
   * The session of a page request: the access cookie verified and checked exactly as
   * `authenticate` checks a Bearer token; missing or expired, the refresh cookie
   * exchanged in the request (server-side silent refresh). Throws the reason otherwise.
   */
  async function resolveSession (request: FastifyRequest, reply: FastifyReply): Promise<AuthContext> {
    const token = presentedAccessToken(request, reply)
    let reason: Error = new TokenMissingError()
    if (token !== null) {
      try {
        if (token.length > MAX_AUTHORIZATION_LENGTH) throw new TokenInvalidError()
        const verified = accessTokens.verify(token)
        const claims = verified instanceof Promise ? await verified : verified
        // One store call answers jti, session and version together, as for a Bearer token.
        if (!await revocation.isCurrentToken(claims.sub, claims.jti, claims.sid, claims.ver)) throw new TokenRevokedError()
        return authContext(claims)
      } catch (err) {
        if ((err as { code?: string }).code !== 'TOKEN_EXPIRED') throw err
        reason = err as Error
      }
    }
    const presented = refresh.presentedRefreshToken(request, reply)
    if (presented === null) throw reason
    // Concurrent page loads present the same cookie: the rotation policy answers each
    // within the grace window with the session's live token, so none forks the chain.
    const issued = await tokenIssuer.refresh(presented.token, clientInfo(request))
    setCookies(reply, issued.body.accessToken, issued.refreshToken)
    return authContext(accessTokens.verify(issued.body.accessToken) as AccessTokenClaims)
  }

  function cookieSession (options: CookieSessionHookOptions = {}): AuthHook {
    checkOptionNames(options, HOOK_OPTION_NAMES, 'cookieSession')
    const onMissing = options.onMissing ?? 'error'
    if (!ON_MISSING.includes(onMissing)) throw new TypeError(`cookieSession: onMissing must be "redirect", "error" or "continue", got ${JSON.stringify(onMissing)}`)
    const target = checkLocalPath(options.loginPath, 'cookieSession: loginPath') ?? loginPath
    if (onMissing === 'redirect' && target === undefined) {
      throw new TypeError('cookieSession: onMissing "redirect" needs a loginPath (of the hook, or of revocableJwtCookieSession)')
    }

    return async function cookieSessionHook (request: FastifyRequest, reply: FastifyReply): Promise<void> {
      // Before any cookie is read or rotated: a cross-site request changes nothing.
      await refuseCrossSite(request)
      try {
        request.auth = await resolveSession(request, reply)
      } catch (err) {
        const code = (err as { code?: string }).code ?? ''
        // A store or a hook of the app failing is a 503, never a redirect to the login page.
        if ((err as { statusCode?: number }).statusCode !== 401) throw err
        // Never clear the refresh cookie when two were sent: the app's own may be the good
        // one, and clearing it would let a planted copy log the user out (as the refresh route).
        const keepRefresh = refresh.read(request).kind === 'conflict'
        if (DEAD_ACCESS.has(code)) access.clear(reply)
        if ((DEAD_ACCESS.has(code) || DEAD_REFRESH.has(code)) && !keepRefresh) refresh.clear(reply)
        if (onMissing === 'error') throw err
        if (onMissing === 'continue') return
        reply.header('cache-control', 'no-store')
        // Awaiting the reply waits until it is sent: the route's handler then never runs.
        await reply.redirect(target as string, 303)
      }
    }
  }

  function clearCookies (reply: FastifyReply): void {
    access.clear(reply)
    refresh.clear(reply)
  }

  async function startCookieSession (reply: FastifyReply, subject: TokenSubject): Promise<{ userId: string, sessionId: string }> {
    const issued = await namespace.startSession(reply.request, subject)
    setCookies(reply, issued.body.accessToken, issued.refreshToken)
    return { userId: issued.userId, sessionId: issued.sessionId }
  }

  async function endCookieSession (request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    clearCookies(reply)
    const auth = request.auth
    if (auth === null) return false
    await sessions.logout(auth.userId, auth.sessionId, auth.tokenId, auth.expiresAt)
    return true
  }

  provide(namespace, {
    cookieSession,
    refuseCrossSite,
    startCookieSession,
    endCookieSession
  })
}

/**
 * The cookie transport for server-rendered pages: `fastify.revocableJwt.cookieSession(options)`
 * makes `onRequest` hooks that read the access token from an HttpOnly cookie, check it
 * exactly as `authenticate` checks a Bearer token, refresh it in the request when it is
 * missing or expired (setting both new cookies) and refuse cross-site unsafe requests;
 * `startCookieSession(reply, subject)` and `endCookieSession(request, reply)` log in and out.
 *
 * @example
 * await app.register(revocableJwtCookieSession, { path: '/app', loginPath: '/app/login' })
 * app.get('/app/account', { onRequest: app.revocableJwt.cookieSession({ onMissing: 'redirect' }) }, async (request) => request.auth!.userId)
 */
export const revocableJwtCookieSession = fp(fastifyRevocableJwtCookieSession, {
  fastify: '5.x',
  name: COOKIE_SESSION_PLUGIN_NAME,
  dependencies: [AUTHENTICATE_PLUGIN_NAME, ISSUANCE_PLUGIN_NAME]
})
