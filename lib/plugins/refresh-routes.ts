import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { IssuedTokens } from '../domain/token-issuer.js'
import {
  CrossSiteRequestError,
  RefreshTokenMissingError,
  SessionNotFoundError
} from '../errors.js'
import { checkOptionNames } from '../options.js'
import { AUTHENTICATE_PLUGIN_NAME } from './authenticate.js'
import { ISSUANCE_PLUGIN_NAME, clientInfo } from './issuance.js'

export const REFRESH_ROUTES_PLUGIN_NAME = 'fastify-revocable-jwt-refresh-routes'

/** Options of the refresh-route plugin. */
export interface RefreshRoutesOptions {
  /**
   * Register `POST {prefix}/logout`.
   * @default true
   */
  logout?: boolean
  /**
   * Register `POST {prefix}/logout-all`.
   * @default true
   */
  logoutAll?: boolean
  /**
   * Register `GET {prefix}/sessions` and `DELETE {prefix}/sessions/:id`.
   * @default true
   */
  sessions?: boolean
  /**
   * Origins (`scheme://host[:port]`) besides the service's own that may call the
   * cookie-authenticated routes (refresh, logout).
   * @default []
   */
  allowedOrigins?: string[]
}

export const REFRESH_ROUTES_OPTION_NAMES = ['logout', 'logoutAll', 'sessions', 'allowedOrigins'] as const

const ORIGIN = /^https?:\/\/[^/?#\s]+$/
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/
/** The routes read no body; one is accepted, of any type, up to this size, and ignored. */
const IGNORED_BODY_LIMIT = 4096

const tokensSchema = {
  type: 'object',
  properties: {
    accessToken: { type: 'string' },
    tokenType: { type: 'string' },
    expiresIn: { type: 'integer' }
  }
} as const
const sessionsSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      createdAt: { type: 'string' },
      lastUsedAt: { type: 'string' },
      userAgent: { type: ['string', 'null'] },
      current: { type: 'boolean' }
    }
  }
} as const

function resolveRoutesOptions (options: RefreshRoutesOptions): { logout: boolean, logoutAll: boolean, sessions: boolean, allowedOrigins: string[] } {
  checkOptionNames(options, REFRESH_ROUTES_OPTION_NAMES, 'revocableJwtRefreshRoutes')
  const resolved = { logout: options.logout ?? true, logoutAll: options.logoutAll ?? true, sessions: options.sessions ?? true }
  for (const [name, value] of Object.entries(resolved)) {
    if (typeof value !== 'boolean') throw new TypeError(`routes.${name} must be a boolean`)
  }
  return { ...resolved, allowedOrigins: resolveAllowedOrigins(options.allowedOrigins) }
}

/** The `allowedOrigins` option, checked and lower-cased (as `crossSiteGuard` compares them). */
export function resolveAllowedOrigins (value: unknown): string[] {
  const allowedOrigins = value ?? []
  if (!Array.isArray(allowedOrigins) || !allowedOrigins.every(o => typeof o === 'string' && ORIGIN.test(o))) {
    throw new TypeError('allowedOrigins must be an array of origins like "https://app.example.com"')
  }
  return allowedOrigins.map(o => o.toLowerCase())
}

/**
 * The `onRequest` hook of cookie-authenticated routes: a browser's cross-site request
 * is refused (`Sec-Fetch-Site: cross-site`, or an `Origin` that is neither the
 * service's own nor allowed), on top of `SameSite`.
 */
export function crossSiteGuard (allowedOrigins: readonly string[]): (request: FastifyRequest) => Promise<void> {
  return async function refuseCrossSite (request: FastifyRequest): Promise<void> {
    if (request.headers['sec-fetch-site'] === 'cross-site') throw new CrossSiteRequestError()
    const origin = request.headers.origin
    if (origin === undefined) return
    const normalised = origin.toLowerCase()
    if (normalised === `${request.protocol}://${request.host}`.toLowerCase()) return
    if (allowedOrigins.includes(normalised)) return
    throw new CrossSiteRequestError()
  }
}

/** Routes that read no body accept any (or none), of any content type, and ignore it. */
function ignoreBodies (routes: FastifyInstance): void {
  routes.removeAllContentTypeParsers()
  routes.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: IGNORED_BODY_LIMIT }, function ignoreBody (_request, _body, done) {
    done(null, undefined)
  })
}

const fastifyRevocableJwtRefreshRoutes: FastifyPluginAsync<RefreshRoutesOptions> = async function fastifyRevocableJwtRefreshRoutes (fastify, opts) {
  const routes = resolveRoutesOptions(opts ?? {})
  const { tokenIssuer, sessions, refreshCookie: cookie, authenticate } = fastify.revocableJwt
  const refuseCrossSite = crossSiteGuard(routes.allowedOrigins)
  const base = cookie.prefix

  async function refresh (request: FastifyRequest, reply: FastifyReply): Promise<IssuedTokens> {
    const presented = cookie.presentedRefreshToken(request, reply)
    if (presented === null) throw new RefreshTokenMissingError()
    try {
      const issued = await tokenIssuer.refresh(presented.token, clientInfo(request))
      cookie.set(reply, issued.refreshToken)
      reply.header('cache-control', 'no-store')
      return issued.body
    } catch (err) {
      const code = (err as { code?: string }).code
      // Never clear a cookie when two were sent: the app's own may be the good one.
      if (!presented.planted && (code === 'REFRESH_TOKEN_INVALID' || code === 'REFRESH_TOKEN_REUSED')) cookie.clear(reply)
      throw err
    }
  }

  await fastify.register(async function refreshRoutes (child) {
    ignoreBodies(child)

    child.post(`${base}/refresh`, {
      onRequest: refuseCrossSite,
      schema: { response: { 200: tokensSchema } }
    }, refresh)

    if (routes.logout) {
      child.post(`${base}/logout`, {
        onRequest: [refuseCrossSite, authenticate]
      }, async function logout (request, reply) {
        const auth = request.auth as NonNullable<FastifyRequest['auth']>
        await sessions.logout(auth.userId, auth.sessionId, auth.tokenId, auth.expiresAt)
        cookie.clear(reply)
        reply.code(204).send()
      })
    }

    if (routes.logoutAll) {
      child.post(`${base}/logout-all`, {
        onRequest: authenticate
      }, async function logoutAll (request, reply) {
        const auth = request.auth as NonNullable<FastifyRequest['auth']>
        await sessions.endAll(auth.userId)
        cookie.clear(reply)
        reply.code(204).send()
      })
    }

    if (routes.sessions) {
      child.get(`${base}/sessions`, {
        onRequest: authenticate,
        schema: { response: { 200: sessionsSchema } }
      }, async function listSessions (request) {
        const auth = request.auth as NonNullable<FastifyRequest['auth']>
        const list = await sessions.list(auth.userId)
        return list.map(session => ({
          id: session.sessionId,
          createdAt: new Date(session.createdAt).toISOString(),
          lastUsedAt: new Date(session.lastUsedAt).toISOString(),
          userAgent: session.userAgent,
          current: session.sessionId === auth.sessionId
        }))
      })

      child.delete<{ Params: { id: string } }>(`${base}/sessions/:id`, {
        onRequest: authenticate
      }, async function revokeSession (request, reply) {
        const auth = request.auth as NonNullable<FastifyRequest['auth']>
        const sessionId = request.params.id
        // Nothing is written for an id that is not one of the caller's sessions.
        if (!SESSION_ID.test(sessionId) || !await sessions.revokeOwn(auth.userId, sessionId)) throw new SessionNotFoundError()
        if (sessionId === auth.sessionId) cookie.clear(reply)
        reply.code(204).send()
      })
    }
  })
}

/**
 * The refresh routes: `POST {prefix}/refresh` (rotation with reuse detection), and
 * `logout`, `logout-all`, the session list and session revoke.
 */
export const revocableJwtRefreshRoutes = fp(fastifyRevocableJwtRefreshRoutes, {
  fastify: '5.x',
  name: REFRESH_ROUTES_PLUGIN_NAME,
  dependencies: [AUTHENTICATE_PLUGIN_NAME, ISSUANCE_PLUGIN_NAME]
})
