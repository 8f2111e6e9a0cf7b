import type { FastifyInstance } from 'fastify'
import type { RefreshTokenStore, RevocationStore } from '../lib/index.js'
import type { ExampleEnv } from './app.js'
import type { UserRegistry } from './users.js'
import type { LoginLimiter } from './login-limiter.js'

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
 * MONGODB_URL as well: refresh tokens in MongoDB instead.
 */
export async function selectStores (app: FastifyInstance, env: ExampleEnv): Promise<SelectedStores> {
  void app
  // --- redis: wired by the Redis adapter ---
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') {
    throw new Error('REDIS_URL is not supported by this build of the example yet')
  }
  // --- mongodb: wired by the MongoDB adapter ---
  if (env.MONGODB_URL !== undefined && env.MONGODB_URL !== '') {
    throw new Error('MONGODB_URL is not supported by this build of the example yet')
  }
  return {}
}
