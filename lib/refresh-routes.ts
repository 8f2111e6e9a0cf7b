import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { IssuedTokens, RefreshRoutesOptions } from '../types/index.js'
import {
  CrossSiteRequestError,
  RefreshTokenInvalidError,
  RefreshTokenMissingError,
  RefreshTokenReusedError,
  SessionNotFoundError
} from './errors.js'
import { CORE_PLUGIN_NAME, getInternals } from './core.js'
import { AUTHENTICATE_PLUGIN_NAME } from './authenticate.js'
import { ISSUANCE_PLUGIN_NAME } from './issuance.js'
import { TOKEN_VERSIONS_PLUGIN_NAME } from './token-versions.js'
import { deriveChildToken, hashToken, parseRefreshToken } from './tokens.js'

export const REFRESH_ROUTES_PLUGIN_NAME = 'fastify-revocable-jwt-refresh-routes'

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/
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

function checkRoutesOptions (options: RefreshRoutesOptions): Required<RefreshRoutesOptions> {
  if (options === null || typeof options !== 'object') throw new TypeError('routes must be an object')
  const resolved = { logout: options.logout ?? true, logoutAll: options.logoutAll ?? true, sessions: options.sessions ?? true }
  for (const [name, value] of Object.entries(resolved)) {
    if (typeof value !== 'boolean') throw new TypeError(`routes.${name} must be a boolean`)
  }
  return resolved
}

const fastifyRevocableJwtRefreshRoutes: FastifyPluginAsync<RefreshRoutesOptions> = async function fastifyRevocableJwtRefreshRoutes (fastify, opts) {
  const routes = checkRoutesOptions(opts ?? {})
  const internals = getInternals(fastify)
  const { options, refreshTokenStore, revocationStore, guard, getVersion, signAccessToken, setRefreshCookie, clearRefreshCookie, clientInfo, emit, extraClaims } = internals
  const { prefix, allowedOrigins, refreshTokenSecret, refreshTokenTtlMs, refreshReuseGraceMs, accessTokenTtlMs } = options
  const expiresIn = Math.floor(accessTokenTtlMs / 1000)
  const base = prefix === '/' ? '' : prefix

  /** `onRequest` hook of the cookie-authenticated routes: a browser's cross-site request is refused. */
  async function refuseCrossSite (request: FastifyRequest): Promise<void> {
    if (request.headers['sec-fetch-site'] === 'cross-site') throw new CrossSiteRequestError()
    const origin = request.headers.origin
    if (origin === undefined) return
    const normalised = origin.toLowerCase()
    if (normalised === `${request.protocol}://${request.host}`.toLowerCase()) return
    if (allowedOrigins.includes(normalised)) return
    throw new CrossSiteRequestError()
  }

  async function refresh (request: FastifyRequest, reply: FastifyReply): Promise<IssuedTokens> {
    const presented = request.cookies[options.cookie.name]
    if (presented === undefined || presented.length === 0) throw new RefreshTokenMissingError()
    const userId = parseRefreshToken(presented)
    if (userId === null) {
      clearRefreshCookie(reply)
      throw new RefreshTokenInvalidError()
    }
    // The version and claims are read before rotating: a failure then leaves the
    // presented token unrotated, so the client's retry is not mistaken for reuse.
    const [version, claims] = await Promise.all([getVersion(userId), extraClaims(userId)])
    const now = options.now()
    const child = deriveChildToken(presented, refreshTokenSecret)
    const childHash = hashToken(child)
    const { userAgent, ip } = clientInfo(request)
    const result = await guard(() => refreshTokenStore.rotate({
      userId,
      hash: hashToken(presented),
      childHash,
      childExpiresAt: now + refreshTokenTtlMs,
      now,
      graceMs: refreshReuseGraceMs,
      userAgent,
      ip
    }))
    if (result.outcome === 'not-found') {
      clearRefreshCookie(reply)
      throw new RefreshTokenInvalidError()
    }
    const record = result.record
    if (result.outcome === 'reused') {
      clearRefreshCookie(reply)
      await internals.revokeSessionEverywhere(userId, record.sessionId, 'reuse')
      emit('refreshTokenReused', { userId, sessionId: record.sessionId, ip, userAgent })
      throw new RefreshTokenReusedError()
    }
    if (record.version !== version) {
      // The user logged out everywhere or changed the password after this session began.
      clearRefreshCookie(reply)
      await internals.revokeSessionEverywhere(userId, record.sessionId, 'stale-version')
      throw new RefreshTokenInvalidError()
    }
    if (record.childHash !== childHash) {
      // Only possible when instances derive children with different refreshTokenSecrets.
      request.log.warn('fastify-revocable-jwt: rotated refresh token does not match its stored child; is refreshTokenSecret the same on every instance?')
      clearRefreshCookie(reply)
      throw new RefreshTokenInvalidError()
    }
    setRefreshCookie(reply, child)
    reply.header('cache-control', 'no-store')
    return { accessToken: signAccessToken(userId, record.sessionId, version, claims), tokenType: 'Bearer', expiresIn }
  }

  fastify.post(`${base}/refresh`, {
    onRequest: refuseCrossSite,
    schema: { response: { 200: tokensSchema } }
  }, refresh)

  if (routes.logout) {
    fastify.post(`${base}/logout`, {
      onRequest: [refuseCrossSite, fastify.authenticate]
    }, async function logout (request, reply) {
      const auth = request.auth as NonNullable<FastifyRequest['auth']>
      await Promise.all([
        guard(() => revocationStore.revokeToken(auth.userId, auth.tokenId, auth.expiresAt)),
        internals.revokeSessionEverywhere(auth.userId, auth.sessionId, 'logout')
      ])
      clearRefreshCookie(reply)
      reply.code(204).send()
    })
  }

  if (routes.logoutAll) {
    fastify.post(`${base}/logout-all`, {
      onRequest: fastify.authenticate
    }, async function logoutAll (request, reply) {
      const auth = request.auth as NonNullable<FastifyRequest['auth']>
      await fastify.revocableJwt.logoutAll(auth.userId)
      clearRefreshCookie(reply)
      reply.code(204).send()
    })
  }

  if (routes.sessions) {
    fastify.get(`${base}/sessions`, {
      onRequest: fastify.authenticate,
      schema: { response: { 200: sessionsSchema } }
    }, async function listSessions (request) {
      const auth = request.auth as NonNullable<FastifyRequest['auth']>
      const sessions = await fastify.revocableJwt.listSessions(auth.userId)
      return sessions.map(session => ({
        id: session.sessionId,
        createdAt: new Date(session.createdAt).toISOString(),
        lastUsedAt: new Date(session.lastUsedAt).toISOString(),
        userAgent: session.userAgent,
        current: session.sessionId === auth.sessionId
      }))
    })

    fastify.delete<{ Params: { id: string } }>(`${base}/sessions/:id`, {
      onRequest: fastify.authenticate
    }, async function revokeSession (request, reply) {
      const auth = request.auth as NonNullable<FastifyRequest['auth']>
      const sessionId = request.params.id
      if (!SESSION_ID.test(sessionId)) throw new SessionNotFoundError()
      // Revocation is keyed by user, so revoking first is harmless for an id that is not
      // the user's, and a retry after a failure in between still completes.
      const deleted = await internals.revokeSessionEverywhere(auth.userId, sessionId, 'revoked')
      if (!deleted) throw new SessionNotFoundError()
      if (sessionId === auth.sessionId) clearRefreshCookie(reply)
      reply.code(204).send()
    })
  }
}

/**
 * The refresh routes: `POST {prefix}/refresh` (rotation with reuse detection),
 * `logout`, `logout-all`, and the session list/revoke routes.
 */
export const revocableJwtRefreshRoutes = fp(fastifyRevocableJwtRefreshRoutes, {
  fastify: '5.x',
  name: REFRESH_ROUTES_PLUGIN_NAME,
  dependencies: [CORE_PLUGIN_NAME, AUTHENTICATE_PLUGIN_NAME, ISSUANCE_PLUGIN_NAME, TOKEN_VERSIONS_PLUGIN_NAME]
})
export default revocableJwtRefreshRoutes
