import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { MemoryRefreshTokenStore, MemoryRevocationStore } from '../stores/memory.js'
import type { RefreshTokenStore, RevocationStore } from '../stores/types.js'
import { useRedisClient, type ResolvedRedisOptions } from './redis-client.js'
import type { RevocableJwtPostgresOptions } from './postgres-option.js'

/** What the stores are built from: given ones, the `redis` or `postgres` option, or memory. */
export interface StoreSettings {
  redis: ResolvedRedisOptions | undefined
  postgres?: RevocableJwtPostgresOptions | undefined
  storeTimeoutMs: number
  now: () => number
}

/**
 * A store the app gave, else the Redis store when `redis` is set (loading ioredis only
 * then), else the PostgreSQL store on the app's pool when `postgres` is set, else a
 * memory store (single process). `owned`: the plugin made it and closes it.
 */
export async function defaultStore<S> (
  fastify: FastifyInstance,
  given: S | undefined,
  settings: StoreSettings,
  kind: 'revocation' | 'refresh-token',
  revocationStore?: unknown
): Promise<{ store: S, owned: boolean }> {
  if (given !== undefined) return { store: given, owned: false }
  const { redis, now, storeTimeoutMs } = settings
  if (redis !== undefined) {
    const client = await useRedisClient(fastify, redis, storeTimeoutMs)
    const { RedisRevocationStore, RedisRefreshTokenStore } = await import('../stores/redis.js')
    const options = { client, keyPrefix: redis.keyPrefix, now }
    if (kind === 'revocation' && redis.nearCache !== undefined) {
      const { NearCachedRevocationStore } = await import('../stores/redis-near-cache.js')
      return { store: new NearCachedRevocationStore({ ...options, ...redis.nearCache, client: client as Redis }) as S, owned: true }
    }
    if (kind === 'revocation') return { store: new RedisRevocationStore(options) as S, owned: true }
    // With the revocation store on the same client and prefix, the scripts read the versions themselves.
    const keyspace = (revocationStore as { keyspace?: { client: unknown, keyPrefix: string } } | undefined)?.keyspace
    const readsTokenVersions = keyspace?.client === client && keyspace.keyPrefix === redis.keyPrefix
    return { store: new RedisRefreshTokenStore({ ...options, readsTokenVersions }) as S, owned: true }
  }
  if (settings.postgres !== undefined) {
    const { pool, tablePrefix, createTables, sweepInterval } = settings.postgres
    const { PostgresRevocationStore, PostgresRefreshTokenStore } = await import('../stores/postgres.js')
    const options = { pool, tablePrefix, createTables, sweepInterval, now }
    if (kind === 'revocation') return { store: new PostgresRevocationStore(options) as S, owned: true }
    // With the revocation store on the same pool and tables, logins and refreshes read the versions themselves.
    const versions = revocationStore instanceof PostgresRevocationStore && revocationStore.uses(pool, tablePrefix) ? revocationStore : undefined
    return { store: new PostgresRefreshTokenStore({ ...options, tokenVersionsOf: versions }) as S, owned: true }
  }
  fastify.log.debug(`fastify-revocable-jwt: ${kind} store in memory; it is not shared between processes`)
  const store: RevocationStore | RefreshTokenStore = kind === 'revocation' ? new MemoryRevocationStore({ now }) : new MemoryRefreshTokenStore({ now })
  return { store: store as S, owned: true }
}

/** Initialise a store when the app is ready and close it with the app when the plugin made it. */
export function manageStore (fastify: FastifyInstance, store: RevocationStore | RefreshTokenStore, owned: boolean): void {
  fastify.addHook('onReady', async function initStore () {
    await store.init?.()
  })
  if (owned) {
    fastify.addHook('onClose', async function closeStore () {
      await store.close?.()
    })
  }
}
