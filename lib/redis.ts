// fastify-revocable-jwt/redis: the Redis stores (they need the optional peer `ioredis`).
export { RedisRevocationStore, RedisRefreshTokenStore, userKeyBase, DEFAULT_REDIS_KEY_PREFIX, type RedisStoreOptions } from './stores/redis.js'
export {
  NearCachedRevocationStore,
  DEFAULT_NEAR_CACHE_MAX_ENTRIES,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_LAG_MS,
  type NearCacheOptions,
  type NearCachedRedisOptions,
  type NearCacheStats
} from './stores/redis-near-cache.js'
