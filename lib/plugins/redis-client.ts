import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { DEFAULT_REDIS_KEY_PREFIX } from '../stores/redis-keys.js'
import type { NearCacheOptions, RevocableJwtRedisOptions } from './redis-options.js'

export type { RevocableJwtRedisOptions } from './redis-options.js'

export interface ResolvedRedisOptions {
  namespace: string | undefined
  url: string | undefined
  clientOptions: Record<string, unknown> | undefined
  keyPrefix: string
  nearCache: NearCacheOptions | undefined
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
  const nearCache = given.nearCache === undefined || given.nearCache === false ? undefined : given.nearCache === true ? {} : given.nearCache
  if (nearCache !== undefined && (nearCache === null || typeof nearCache !== 'object')) {
    throw new TypeError('redis.nearCache must be true, false or { maxEntries, heartbeatInterval, maxLag }')
  }
  return { namespace: given.namespace, url: given.url, clientOptions: given.clientOptions, keyPrefix, nearCache }
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

/** The clients this package created, per app instance and per what they were made from. */
const createdClients = new WeakMap<FastifyInstance, Map<string, Promise<Redis>>>()

function registeredClient (fastify: FastifyInstance, namespace: string | undefined): Redis | Cluster | undefined {
  if (!fastify.hasDecorator('redis')) return undefined
  const redis = (fastify as unknown as { redis: Record<string, Redis | Cluster | undefined> & Redis }).redis
  if (namespace === undefined) return typeof redis.mget === 'function' ? redis : undefined
  return redis[namespace]
}

/** A Redis URL fit for a message: its password replaced. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.href
  } catch {
    return '(unparsable URL)'
  }
}

/**
 * Connect a client the plugin created, within `timeoutMs`: an unreachable Redis stops
 * the boot with an error naming the address and the cause, instead of hanging.
 */
async function connectWithin (client: Redis, where: string, timeoutMs: number): Promise<void> {
  let lastError: Error | undefined
  const remember = (err: Error): void => { lastError = err }
  client.on('error', remember)
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      })
    ])
  } catch (err) {
    client.disconnect()
    const cause = lastError ?? err as Error
    throw new Error(`fastify-revocable-jwt: cannot reach Redis at ${where} (the redis option): ${cause.message}`, { cause })
  } finally {
    clearTimeout(timer)
    client.off('error', remember)
  }
}

/** Close a client the plugin created, also while Redis is down (a QUIT cannot be sent then). */
async function closeClient (client: Redis, timeoutMs: number): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    client.quit().catch(() => client.disconnect()),
    new Promise<void>(resolve => {
      timer = setTimeout(() => { client.disconnect(); resolve() }, timeoutMs)
    })
  ])
  clearTimeout(timer)
}

/**
 * The client the Redis stores use: the app's @fastify/redis instance (default or
 * `namespace`) when registered, otherwise one the plugin creates from `url` and
 * `clientOptions`, connects at boot (within `storeTimeout`, at least a second) and
 * closes with the app. Plugins of the package given the same option share it.
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
  const madeFrom = JSON.stringify({ url, clientOptions })
  let clients = createdClients.get(fastify)
  if (clients === undefined) {
    clients = new Map()
    createdClients.set(fastify, clients)
  }
  let pending = clients.get(madeFrom)
  if (pending === undefined) {
    pending = createClient(fastify, url, clientOptions, storeTimeoutMs)
    clients.set(madeFrom, pending)
  }
  return await pending
}

async function createClient (fastify: FastifyInstance, url: string | undefined, clientOptions: Record<string, unknown> | undefined, storeTimeoutMs: number): Promise<Redis> {
  // Loaded only here: apps that keep no state in Redis never load ioredis.
  const { Redis } = await import('ioredis')
  const settings: RedisOptions = { ...failFastRedisOptions(storeTimeoutMs), ...clientOptions, lazyConnect: true }
  const client = url === undefined ? new Redis(settings) : new Redis(url, settings)
  const where = url === undefined ? `${String(settings.host ?? '127.0.0.1')}:${String(settings.port ?? 6379)}` : redactUrl(url)
  await connectWithin(client, where, Math.max(storeTimeoutMs, 1000) + 500)
  // Without a listener ioredis prints every reconnection failure to stderr; a warning
  // in the app's log says the same, and requests meanwhile get their 503.
  client.on('error', function onRedisError (err: Error) {
    fastify.log.warn({ err }, 'fastify-revocable-jwt: Redis connection error')
  })
  fastify.addHook('onClose', async function closeRedisClient () {
    await closeClient(client, Math.max(storeTimeoutMs, 1000))
  })
  return client
}
