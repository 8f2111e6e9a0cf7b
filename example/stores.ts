import type { FastifyInstance } from 'fastify'
import { AuthStoreUnavailableError, type RefreshTokenStore, type RevocationStore } from '../lib/index.js'
import type { ExampleEnv } from './app.js'
import type { UserRegistry } from './users.js'
import type { LoginLimiter } from './login-limiter.js'

/** Any failure of the example's own stores (users, limiter) is a 503, like the package's stores. */
export async function unavailableOnError<T> (operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (err) {
    throw new AuthStoreUnavailableError({ cause: err })
  }
}

/** The stores the environment selects; anything left undefined falls back to memory. */
export interface SelectedStores {
  revocationStore?: RevocationStore
  refreshTokenStore?: RefreshTokenStore
  users?: UserRegistry
  loginLimiter?: LoginLimiter
  close?: () => Promise<void>
}

/**
 * Memory by default (one process). With REDIS_URL: revocation, refresh tokens, users
 * and the login limiter in Redis, so several instances behave as one service. With
 * DATABASE_URL (a PostgreSQL URL) and no REDIS_URL: all of them in PostgreSQL instead.
 * With MONGODB_URL as well: refresh tokens in MongoDB instead.
 */
export async function selectStores (app: FastifyInstance, env: ExampleEnv, now: () => number = Date.now): Promise<SelectedStores> {
  // --- redis: wired by the Redis adapter ---
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') {
    // Loaded only when used: without REDIS_URL the example never loads a Redis client.
    const { selectRedisStores } = await import('./redis.js')
    const selected = await selectRedisStores(app, env.REDIS_URL, /^(true|1|yes)$/i.test(env.REDIS_NEAR_CACHE ?? ''))
    // Revocation stays in Redis; with MONGODB_URL as well, refresh tokens move to MongoDB.
    return env.MONGODB_URL !== undefined && env.MONGODB_URL !== '' ? await withMongoRefreshTokens(env.MONGODB_URL, selected) : selected
  }
  // --- postgres: wired by the PostgreSQL adapter ---
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== '') {
    // Loaded only when used: without DATABASE_URL the example never loads pg.
    const { selectPostgresStores } = await import('./postgres.js')
    const selected = await selectPostgresStores(app, env.DATABASE_URL, now)
    return env.MONGODB_URL !== undefined && env.MONGODB_URL !== '' ? await withMongoRefreshTokens(env.MONGODB_URL, selected) : selected
  }
  // --- mongodb: wired by the MongoDB adapter ---
  if (env.MONGODB_URL !== undefined && env.MONGODB_URL !== '') {
    // MONGODB_URL alone: refresh tokens in MongoDB, everything else in memory. With
    // REDIS_URL too, the Redis branch above hands its stores to withMongoRefreshTokens.
    return await withMongoRefreshTokens(env.MONGODB_URL)
  }
  return {}
}

/**
 * Refresh tokens in MongoDB, every other store as already selected (Redis or memory).
 * The store owns a client made from the URL: the core connects it (and creates the
 * indexes) when the app is ready, and `close` here, run by the app's onClose, ends it.
 */
export async function withMongoRefreshTokens (url: string, selected: SelectedStores = {}): Promise<SelectedStores> {
  const { MongoRefreshTokenStore } = await import('../lib/stores/mongodb.js')
  const refreshTokenStore = new MongoRefreshTokenStore({ url })
  return {
    ...selected,
    refreshTokenStore,
    close: async () => {
      try {
        await refreshTokenStore.close()
      } finally {
        await selected.close?.()
      }
    }
  }
}
