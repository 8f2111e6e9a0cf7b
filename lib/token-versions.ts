import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { CORE_PLUGIN_NAME, checkUserId, getInternals } from './core.js'

export const TOKEN_VERSIONS_PLUGIN_NAME = 'fastify-revocable-jwt-token-versions'

const fastifyRevocableJwtTokenVersions: FastifyPluginAsync = async function fastifyRevocableJwtTokenVersions (fastify) {
  const { getVersion, bumpVersion } = getInternals(fastify)

  fastify.decorate('bumpTokenVersion', async function bumpTokenVersion (userId: string): Promise<number> {
    checkUserId(userId)
    return await bumpVersion(userId)
  })
  fastify.decorate('getTokenVersion', async function getTokenVersion (userId: string): Promise<number> {
    checkUserId(userId)
    return await getVersion(userId)
  })
}

/**
 * Per-user token versions: `fastify.bumpTokenVersion(userId)` invalidates every
 * access and refresh token of the user issued before the call.
 */
export const revocableJwtTokenVersions = fp(fastifyRevocableJwtTokenVersions, {
  fastify: '5.x',
  name: TOKEN_VERSIONS_PLUGIN_NAME,
  dependencies: [CORE_PLUGIN_NAME]
})
export default revocableJwtTokenVersions
