import { randomUUID } from 'node:crypto'
import fastifyRedis from '@fastify/redis'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { NearCachedRevocationStore, RedisRefreshTokenStore, RedisRevocationStore } from '../lib/redis.js'
import { unavailableOnError, type SelectedStores } from './stores.js'
import type { User, UserRegistry } from './users.js'
import type { LoginLimiter } from './login-limiter.js'
import { LOGIN_FAILURE_WINDOW_MS } from './app.js'

/** How long one Redis command of the example may take before the request is refused. */
const COMMAND_TIMEOUT_MS = 2000

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

/** KEYS: the counter. ARGV: max, window ms. Returns { 1 if taken else 0, ms left of the window }. */
const TAKE_SCRIPT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return { 0, redis.call('PTTL', KEYS[1]) } end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return { 1, redis.call('PTTL', KEYS[1]) }
`
/** KEYS: the counter. Decrements it when above zero, keeping its TTL. */
const GIVE_BACK_SCRIPT = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
`

interface LimiterCommands {
  exampleLoginTake: (key: string, max: number, windowMs: number) => Promise<[number, number]>
  exampleLoginGiveBack: (key: string) => Promise<number>
}

/**
 * Password attempts in Redis, a fixed window per key: one script checks the count and
 * takes an attempt (starting the window with its TTL), so that instances share the
 * limit and a counter never lives without its TTL.
 */
export class RedisLoginLimiter implements LoginLimiter {
  readonly #commands: LimiterCommands
  constructor (readonly client: Redis, readonly windowMs: number, readonly prefix = 'example:login:') {
    client.defineCommand('exampleLoginTake', { numberOfKeys: 1, lua: TAKE_SCRIPT })
    client.defineCommand('exampleLoginGiveBack', { numberOfKeys: 1, lua: GIVE_BACK_SCRIPT })
    this.#commands = client as unknown as LimiterCommands
  }

  take (key: string, max: number): Promise<{ taken: boolean, retryAfterMs: number }> {
    return unavailableOnError(async () => {
      const [taken, pttl] = await this.#commands.exampleLoginTake(this.prefix + key, max, this.windowMs)
      return { taken: taken === 1, retryAfterMs: pttl > 0 ? pttl : this.windowMs }
    })
  }

  giveBack (key: string): Promise<void> {
    return unavailableOnError(async () => { await this.#commands.exampleLoginGiveBack(this.prefix + key) })
  }

  remember (key: string, ttlMs: number): Promise<void> {
    return unavailableOnError(async () => { await this.client.set(this.prefix + key, 1, 'PX', ttlMs) })
  }

  isRemembered (key: string): Promise<boolean> {
    return unavailableOnError(async () => await this.client.exists(this.prefix + key) === 1)
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
    loginLimiter: new RedisLoginLimiter(client, LOGIN_FAILURE_WINDOW_MS)
  }
}
