import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { IssuedTokens, TokenSubject } from '../types/index.js'
import { CORE_PLUGIN_NAME, checkUserId, getInternals } from './core.js'
import { hashToken, mintRefreshToken, randomId } from './tokens.js'

export const ISSUANCE_PLUGIN_NAME = 'fastify-revocable-jwt-issuance'

const fastifyRevocableJwtIssuance: FastifyPluginAsync = async function fastifyRevocableJwtIssuance (fastify) {
  const internals = getInternals(fastify)
  const { options, refreshTokenStore, guard, getVersion, signAccessToken, setRefreshCookie, clearRefreshCookie, clientInfo, extraClaims } = internals
  const expiresIn = Math.floor(options.accessTokenTtlMs / 1000)

  async function issueTokens (this: FastifyReply, subject: TokenSubject): Promise<IssuedTokens> {
    if (subject === null || typeof subject !== 'object') throw new TypeError('issueTokens needs a subject { id }')
    checkUserId(subject.id, 'subject.id')
    if ('claims' in subject) throw new TypeError('issueTokens takes no claims: give the accessTokenClaims option, so that refreshed tokens carry them too')
    const userId = subject.id
    const [version, claims] = await Promise.all([getVersion(userId), extraClaims(userId)])
    const now = options.now()
    const sessionId = randomId()
    const refreshToken = mintRefreshToken(userId)
    const accessToken = signAccessToken(userId, sessionId, version, claims)
    const { userAgent, ip } = clientInfo(this.request)
    await guard(() => refreshTokenStore.create({
      hash: hashToken(refreshToken),
      sessionId,
      userId,
      version,
      sessionCreatedAt: now,
      createdAt: now,
      expiresAt: now + options.refreshTokenTtlMs,
      lastUsedAt: now,
      userAgent,
      ip,
      rotatedAt: null,
      childHash: null
    }))
    setRefreshCookie(this, refreshToken)
    this.header('cache-control', 'no-store')
    return { accessToken, tokenType: 'Bearer', expiresIn }
  }

  fastify.decorateReply('issueTokens', issueTokens)
  fastify.decorateReply('clearRefreshCookie', function (this: FastifyReply): FastifyReply {
    clearRefreshCookie(this)
    return this
  })
}

/**
 * Token issuance: `reply.issueTokens({ id })` starts a session from a login handler:
 * signs the access token, mints the refresh token, stores its hash, sets the cookie.
 */
export const revocableJwtIssuance = fp(fastifyRevocableJwtIssuance, {
  fastify: '5.x',
  name: ISSUANCE_PLUGIN_NAME,
  dependencies: [CORE_PLUGIN_NAME]
})
export default revocableJwtIssuance
