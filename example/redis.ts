import { randomUUID } from 'node:crypto'
import fastifyRedis from '@fastify/redis'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { AuthStoreUnavailableError } from '../lib/index.js'
import { NearCachedRevocationStore, RedisRefreshTokenStore, RedisRevocationStore } from '../lib/redis.js'
import type { SelectedStores } from './stores.js'
import type { User, UserRegistry } from './users.js'
import type { LoginLimiter } from './login-limiter.js'
import { LOGIN_FAILURE_WINDOW_MS, LOGIN_MAX_FAILURES } from './app.js'

/** How long one Redis command of the example may take before the request is refused. */
const COMMAND_TIMEOUT_MS = 2000

/** Any Redis failure of the example's own stores is a 503, like the package's stores. */
async function unavailableOnError<T> (operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (err) {
    throw new AuthStoreUnavailableError({ cause: err })
  }
}

/**
 * Users in Redis: `example:user:email:<email>` holds the user as JSON (one GET per
 * login) and `example:user:id:<id>` the email. `SET NX` on the email makes two
 * instances registering the same address at once end with one account.
 */
export class RedisUserRegistry implements UserRegistry {
  constructor (readonly client: Redis, readonly prefix = 'example:user:') {}

  create (email: string, passwordHash: string): Promise<User | null> {
    return unavailableOnError(async () => {
      const user = { id: randomUUID(), email, passwordHash }
      if (await this.client.set(`${this.prefix}email:${email}`, JSON.stringify(user), 'NX') === null) return null
      await this.client.set(`${this.prefix}id:${user.id}`, email)
      return user
    })
  }

  findByEmail (email: string): Promise<User | null> {
    return unavailableOnError(async () => {
      const json = await this.client.get(`${this.prefix}email:${email}`)
      return json === null ? null : JSON.parse(json) as User
    })
  }

  findById (id: string): Promise<User | null> {
    return unavailableOnError(async () => {
      const email = await this.client.get(`${this.prefix}id:${id}`)
      return email === null ? null : await this.findByEmail(email)
    })
  }

  setPasswordHash (id: string, passwordHash: string): Promise<void> {
    return unavailableOnError(async () => {
      const user = await this.findById(id)
      if (user === null) return
      await this.client.set(`${this.prefix}email:${user.email}`, JSON.stringify({ ...user, passwordHash }), 'XX')
    })
  }
}

/**
 * Failed logins in Redis, a fixed window per key: the first failure creates the
 * counter with the window as its TTL (`SET NX PX`), each failure `INCR`s it, in one
 * MULTI so that a counter never lives without its TTL.
 */
export class RedisLoginLimiter implements LoginLimiter {
  constructor (readonly client: Redis, readonly max: number, readonly windowMs: number, readonly prefix = 'example:login:') {}

  hit (key: string): Promise<{ count: number, retryAfterMs: number }> {
    return unavailableOnError(async () => {
      // One transaction: start the window if there is none, count, and read what is left of it.
      const results = await this.client.multi()
        .set(this.prefix + key, 0, 'PX', this.windowMs, 'NX')
        .incr(this.prefix + key)
        .pttl(this.prefix + key)
        .exec()
      const count = Number(results?.[1]?.[1])
      const pttl = Number(results?.[2]?.[1])
      return { count, retryAfterMs: pttl > 0 ? pttl : this.windowMs }
    })
  }

  reset (key: string): Promise<void> {
    return unavailableOnError(async () => { await this.client.del(this.prefix + key) })
  }
}

/**
 * Revocation, refresh tokens, users and the login limiter in Redis, through one
 * client registered with @fastify/redis (which closes it with the app). The client
 * fails fast while Redis is unreachable: no offline queue, a command timeout.
 */
export async function selectRedisStores (app: FastifyInstance, url: string, nearCache = false): Promise<SelectedStores> {
  await app.register(fastifyRedis, {
    url,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: (times: number) => Math.min(times * 100, 1000)
  })
  const client = app.redis
  client.on('error', function onRedisError (err: Error) {
    app.log.warn({ err }, 'Redis connection error')
  })
  return {
    // REDIS_NEAR_CACHE=true: revocation checks answered from memory, invalidated by Redis.
    revocationStore: nearCache ? new NearCachedRevocationStore({ client }) : new RedisRevocationStore({ client }),
    refreshTokenStore: new RedisRefreshTokenStore({ client }),
    users: new RedisUserRegistry(client),
    loginLimiter: new RedisLoginLimiter(client, LOGIN_MAX_FAILURES, LOGIN_FAILURE_WINDOW_MS)
  }
}
