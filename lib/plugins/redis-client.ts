import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { DEFAULT_REDIS_KEY_PREFIX } from '../stores/redis.js'

/**
 * Where the Redis stores get their client: the app's @fastify/redis instance when it
 * has registered one (default or `namespace`), otherwise one that the plugin registers
 * through @fastify/redis from `url` and `clientOptions` (and @fastify/redis closes).
 * Needs the optional peer dependencies `ioredis` and `@fastify/redis`.
 */
export interface RevocableJwtRedisOptions {
  /**
   * The @fastify/redis namespace to reuse (or to register under when the app has none).
   * @default undefined (the default instance, `fastify.redis`)
   */
  namespace?: string
  /**
   * The Redis URL (`redis://`, `rediss://`) of the client registered when the app has none.
   * Refused when the app has registered one: its client is used as it is.
   * @default undefined
   */
  url?: string
  /**
   * ioredis options of the client registered when the app has none, applied over the
   * fail-fast defaults (`enableOfflineQueue: false`, `maxRetriesPerRequest: 1`,
   * `commandTimeout` = `storeTimeout`, reconnection every 100 ms to 1 s).
   * @default {}
   */
  clientOptions?: Record<string, unknown>
  /**
   * Prefix of every key the Redis stores write; no `{` or `}`.
   * @default 'rjwt:'
   */
  keyPrefix?: string
}

export interface ResolvedRedisOptions {
  namespace: string | undefined
  url: string | undefined
  clientOptions: Record<string, unknown> | undefined
  keyPrefix: string
}

export function resolveRedisOptions (redis: string | RevocableJwtRedisOptions | undefined): ResolvedRedisOptions | undefined {
  if (redis === undefined) return undefined
  const given: RevocableJwtRedisOptions = typeof redis === 'string' ? { url: redis } : redis
  if (given === null || typeof given !== 'object') throw new TypeError('redis must be a Redis URL or an object { namespace, url, clientOptions, keyPrefix }')
  for (const name of ['namespace', 'url'] as const) {
    const value = given[name]
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new TypeError(`redis.${name} must be a non-empty string`)
  }
  if (given.url !== undefined && !/^rediss?:\/\//.test(given.url)) {
    throw new TypeError(`redis.url must be a redis:// or rediss:// URL, got ${JSON.stringify(given.url)}`)
  }
  if (given.clientOptions !== undefined && (given.clientOptions === null || typeof given.clientOptions !== 'object')) {
    throw new TypeError('redis.clientOptions must be an object of ioredis options')
  }
  const keyPrefix = given.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX
  if (typeof keyPrefix !== 'string' || /[{}]/.test(keyPrefix)) {
    throw new TypeError('redis.keyPrefix must be a string without "{" or "}" (they would change the Redis Cluster hash slot)')
  }
  return { namespace: given.namespace, url: given.url, clientOptions: given.clientOptions, keyPrefix }
}

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

/**
 * The clients this package registered, with what they were made from: a second plugin
 * of the package given the same `redis` option shares the first one's client.
 */
const createdClients = new WeakMap<Redis | Cluster, string>()

function registeredClient (fastify: FastifyInstance, namespace: string | undefined): Redis | Cluster | undefined {
  if (!fastify.hasDecorator('redis')) return undefined
  const redis = (fastify as unknown as { redis: Record<string, Redis | Cluster | undefined> & Redis }).redis
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
  const madeFrom = JSON.stringify({ url, clientOptions })
  if (existing !== undefined) {
    if (createdClients.get(existing) === madeFrom) return existing
    if (url !== undefined || clientOptions !== undefined) {
      throw new TypeError(`redis.url and redis.clientOptions configure a client of the plugin's own, but @fastify/redis is already registered as ${where}: leave them out to use that client`)
    }
    return existing
  }
  if (url === undefined && clientOptions === undefined) {
    throw new TypeError(`redis: @fastify/redis is not registered as ${where}; give redis.url or redis.clientOptions to connect`)
  }
  // Loaded only here: apps that keep no state in Redis never load ioredis.
  const { default: fastifyRedis } = await import('@fastify/redis')
  await fastify.register(fastifyRedis, {
    ...failFastRedisOptions(storeTimeoutMs),
    ...clientOptions,
    ...(url !== undefined && { url }),
    ...(namespace !== undefined && { namespace })
  })
  const client = registeredClient(fastify, namespace) as Redis | Cluster
  createdClients.set(client, madeFrom)
  // Without a listener ioredis prints every reconnection failure to stderr; a warning
  // in the app's log says the same, and requests meanwhile get their 503.
  client.on('error', function onRedisError (err: Error) {
    fastify.log.warn({ err }, 'fastify-revocable-jwt: Redis connection error')
  })
  return client
}
