// The public types of the `redis` option, apart from the code that uses ioredis: the
// main entry's declarations reach them, and an app without the optional ioredis peer
// must still type-check them (with skipLibCheck off, an `import type` of 'ioredis'
// is an error where ioredis is not installed).

/** Options of the near cache. */
export interface NearCacheOptions {
  /**
   * Keys (revoked-token, revoked-session and version keys) kept in memory at most;
   * the oldest go first.
   * @default 100000
   */
  maxEntries?: number
  /**
   * How often, in ms, the instance proves that invalidations reach it: it writes a key
   * of its own and waits for Redis's invalidation of it.
   * @default 250
   */
  heartbeatInterval?: number
  /**
   * How long, in ms, that proof may take. Later, the cache is emptied and every check
   * goes to Redis until a proof arrives in time again. A silent failure of the
   * invalidation link is therefore noticed within `heartbeatInterval + maxLag`.
   * @default 250
   */
  maxLag?: number
}

/**
 * Where the Redis stores get their client: the app's @fastify/redis instance when it
 * has registered one (default or `namespace`), otherwise one the plugin creates from
 * `url` and `clientOptions`, connects at boot and closes with the app. Needs the
 * optional peer dependency `ioredis`.
 */
export interface RevocableJwtRedisOptions {
  /**
   * The @fastify/redis namespace whose client to reuse.
   * @default undefined (the default instance, `fastify.redis`, when the app registered one)
   */
  namespace?: string
  /**
   * The Redis URL (`redis://`, `rediss://`) of the client the plugin creates when the app
   * has none registered. Refused when the app has one: its client is used as it is.
   * @default undefined
   */
  url?: string
  /**
   * ioredis options of the client the plugin creates, applied over the
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
  /**
   * Keep the answers of revocation checks in memory, invalidated by Redis when they
   * change (server-assisted client-side caching): a protected request then costs no
   * round trip. Standalone Redis only. See the README's "Near cache" for the guarantee.
   * @default false
   */
  nearCache?: boolean | NearCacheOptions
}
