import fastifyRedis from '@fastify/redis'
import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import type { ResolvedRedisOptions } from './options.js'

/** Longest pause between two reconnection attempts of a client the plugin creates. */
export const REDIS_MAX_RECONNECT_DELAY_MS = 1000

/**
 * ioredis options of a client the plugin creates: while Redis is unreachable a
 * command fails at once instead of waiting in the offline queue, so a request gets
 * its 503 now rather than after `storeTimeout`; reconnection keeps trying, so the
 * service recovers on its own when Redis is back.
 */
export function failFastRedisOptions (storeTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: storeTimeoutMs,
    connectTimeout: Math.max(storeTimeoutMs, 1000),
    retryStrategy: (times: number) => Math.min(times * 100, REDIS_MAX_RECONNECT_DELAY_MS)
  }
}

function registeredClient (fastify: FastifyInstance, namespace: string | undefined): Redis | Cluster | undefined {
  if (!fastify.hasDecorator('redis')) return undefined
  const redis = fastify.redis as unknown as Record<string, Redis | Cluster | undefined> & Redis
  if (namespace === undefined) return typeof redis.mget === 'function' ? redis : undefined
  return redis[namespace]
}

/**
 * The client the Redis stores use: the app's @fastify/redis instance (default or
 * `namespace`) when registered, otherwise a new one registered through
 * @fastify/redis, which also closes it when the app closes.
 */
export async function useRedisClient (fastify: FastifyInstance, options: ResolvedRedisOptions, storeTimeoutMs: number): Promise<Redis | Cluster> {
  const { namespace, url, clientOptions } = options
  const where = namespace === undefined ? 'fastify.redis' : `fastify.redis.${namespace}`
  const existing = registeredClient(fastify, namespace)
  if (existing !== undefined) {
    if (url !== undefined || clientOptions !== undefined) {
      throw new TypeError(`redis.url and redis.clientOptions configure a client of the plugin's own, but @fastify/redis is already registered as ${where}: leave them out to use that client`)
    }
    return existing
  }
  if (url === undefined && clientOptions === undefined) {
    throw new TypeError(`redis: @fastify/redis is not registered as ${where}; give redis.url or redis.clientOptions to connect`)
  }
  await fastify.register(fastifyRedis, {
    ...failFastRedisOptions(storeTimeoutMs),
    ...clientOptions,
    ...(url !== undefined && { url }),
    ...(namespace !== undefined && { namespace })
  })
  const client = registeredClient(fastify, namespace) as Redis | Cluster
  // Without a listener ioredis prints every reconnection failure to stderr; a warning
  // in the app's log says the same, and requests meanwhile get their 503.
  client.on('error', function onRedisError (err: Error) {
    fastify.log.warn({ err }, 'fastify-revocable-jwt: Redis connection error')
  })
  return client
}
