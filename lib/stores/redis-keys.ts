import type { Cluster, Redis } from 'ioredis'

/** Options of the Redis stores. */
export interface RedisStoreOptions {
  /**
   * The ioredis client (a `Redis` or a `Cluster`). The store never quits it: it
   * belongs to whoever created it (with the plugin's `redis` option, the plugin).
   */
  client: Redis | Cluster
  /**
   * Prefix of every key the store writes. Must not contain `{` or `}`: the user's
   * Redis Cluster hash tag follows it.
   * @default 'rjwt:'
   */
  keyPrefix?: string
  /**
   * The clock, in ms since the epoch, that key TTLs are computed from (`PX` = expiry − now).
   * @default Date.now
   */
  now?: () => number
}

export const DEFAULT_REDIS_KEY_PREFIX = 'rjwt:'

export interface ResolvedRedisStoreOptions {
  client: Redis | Cluster
  keyPrefix: string
  now: () => number
}

export function checkRedisOptions (options: RedisStoreOptions, name: string): ResolvedRedisStoreOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`${name}: options must be an object`)
  const client = options.client as unknown as Record<string, unknown> | null | undefined
  if (client === null || typeof client !== 'object' || typeof client.mget !== 'function' || typeof client.defineCommand !== 'function') {
    throw new TypeError(`${name}: client must be an ioredis Redis or Cluster instance`)
  }
  const keyPrefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX
  if (typeof keyPrefix !== 'string' || /[{}]/.test(keyPrefix)) {
    throw new TypeError(`${name}: keyPrefix must be a string without "{" or "}" (they would change the Redis Cluster hash slot)`)
  }
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new TypeError(`${name}: now must be a function`)
  return { client: options.client, keyPrefix, now }
}

/**
 * The common start of every key of one user: the prefix and a Redis Cluster hash
 * tag holding the user id in base64url (a raw id may contain `{` or `}`), so that
 * all keys of a user live in one slot and one command or script can touch them all.
 */
export function userKeyBase (keyPrefix: string, userId: string): string {
  return `${keyPrefix}{${Buffer.from(userId).toString('base64url')}}:`
}
