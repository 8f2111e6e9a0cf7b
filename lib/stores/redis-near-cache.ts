import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { NearCacheOptions } from '../plugins/redis-options.js'
import type { RevocationState, RevocationStore } from './types.js'
import { DEFAULT_REDIS_KEY_PREFIX, userKeyBase } from './redis-keys.js'
import { RedisRevocationStore } from './redis-revocation.js'

export type { NearCacheOptions } from '../plugins/redis-options.js'

export interface NearCachedRedisOptions extends NearCacheOptions {
  /** The app's ioredis client (a standalone `Redis`: a Cluster has no single invalidation link). The store writes with it and reads through a duplicate. */
  client: Redis
  /** @default 'rjwt:' */
  keyPrefix?: string
  /** @default Date.now */
  now?: () => number
}

export const DEFAULT_NEAR_CACHE_MAX_ENTRIES = 100_000
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 250
export const DEFAULT_MAX_LAG_MS = 250
const INVALIDATE_CHANNEL = '__redis__:invalidate'

/** What the near cache did, for metrics and tests. */
export interface NearCacheStats {
  /** Checks answered from memory. */
  hits: number
  /** Checks that went to Redis. */
  misses: number
  /** Whether answers may be taken from memory now (the link is proven). */
  enabled: boolean
  /** Times the cache was emptied because the link failed or lagged. */
  resets: number
}

function positive (value: unknown, name: string, fallback: number): number {
  const resolved = value ?? fallback
  if (!Number.isSafeInteger(resolved) || (resolved as number) < 1) throw new RangeError(`NearCachedRevocationStore: ${name} must be a positive integer, got ${String(value)}`)
  return resolved as number
}

/**
 * The Redis revocation store with a near cache: each instance keeps the values of the
 * revocation keys it has read (revoked `jti`, revoked session, version) in memory, and
 * Redis tells it when one changes (server-assisted client-side caching: `CLIENT TRACKING`
 * on a reading connection, invalidations redirected to a subscribed one). A check whose
 * three keys are all cached costs no round trip.
 *
 * Guarantee: a revocation written by any instance is refused by this one as soon as
 * Redis's invalidation message has arrived. The link is proven by a heartbeat; when a
 * connection drops, or the heartbeat's own invalidation is later than `maxLag`, the cache
 * is emptied and checks go to Redis until the link is proven again, so an answer is never
 * taken from memory more than `heartbeatInterval + maxLag` after a silent failure of the
 * link. A read whose reply could have crossed an invalidation is not cached.
 */
export class NearCachedRevocationStore implements RevocationStore {
  readonly #writes: RedisRevocationStore
  readonly #client: Redis
  readonly #keyPrefix: string
  readonly #maxEntries: number
  readonly #interval: number
  readonly #maxLag: number
  readonly #cache = new Map<string, string | null>()
  readonly #stats: NearCacheStats = { hits: 0, misses: 0, enabled: false, resets: 0 }
  /** Bumped by every invalidation and reset: a read that started before a bump is not cached. */
  #generation = 0
  #reader: Redis | null = null
  #subscriber: Redis | null = null
  #readerTracked = false
  #subscribed = false
  #subscriberId = 0
  #setup: Promise<void> | null = null
  #heartbeat: NodeJS.Timeout | null = null
  #heartbeatKey: string
  #awaitingProof: { sentAt: number, timer: NodeJS.Timeout } | null = null
  #closed = false

  constructor (options: NearCachedRedisOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('NearCachedRevocationStore: options must be an object')
    const client = options.client as unknown as Record<string, unknown>
    if (typeof client?.duplicate !== 'function' || typeof client.mget !== 'function' || client.isCluster === true) {
      throw new TypeError('NearCachedRevocationStore: client must be a standalone ioredis Redis (a Cluster has no single invalidation link)')
    }
    this.#writes = new RedisRevocationStore({ client: options.client, keyPrefix: options.keyPrefix, now: options.now })
    this.#client = options.client
    this.#keyPrefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX
    this.#maxEntries = positive(options.maxEntries, 'maxEntries', DEFAULT_NEAR_CACHE_MAX_ENTRIES)
    this.#interval = positive(options.heartbeatInterval, 'heartbeatInterval', DEFAULT_HEARTBEAT_INTERVAL_MS)
    this.#maxLag = positive(options.maxLag, 'maxLag', DEFAULT_MAX_LAG_MS)
    this.#heartbeatKey = `${this.#keyPrefix}near-cache:${randomBytes(12).toString('base64url')}`
  }

  /** Where the token versions live (as the Redis revocation store). */
  get keyspace (): { client: Redis, keyPrefix: string } {
    return { client: this.#client, keyPrefix: this.#keyPrefix }
  }

  /** Counters of hits, misses and resets, and whether the cache is in use now. */
  get stats (): Readonly<NearCacheStats> {
    return { ...this.#stats }
  }

  /** Open the reading and the invalidation connections; called when the app is ready. */
  async init (): Promise<void> {
    if (this.#reader !== null) return
    const reader = this.#client.duplicate({ lazyConnect: true, enableOfflineQueue: false })
    // RESP2 on the subscriber: ioredis surfaces RESP2 invalidation messages as pub/sub messages.
    const subscriber = this.#client.duplicate({ lazyConnect: true, enableOfflineQueue: false, autoResubscribe: false, protocol: 2 })
    this.#reader = reader
    this.#subscriber = subscriber
    for (const connection of [reader, subscriber]) {
      connection.on('error', () => {})
      // A connection that drops loses the server's tracking state: nothing cached can be trusted.
      connection.on('close', () => this.#lose())
      connection.on('ready', () => { this.#prove() })
    }
    subscriber.on('messageBuffer', (channel: Buffer, keys: Buffer[] | null) => this.#invalidate(channel, keys))
    await Promise.all([reader.connect(), subscriber.connect()])
    await this.#prove()
    this.#heartbeat = setInterval(() => { this.#beat() }, this.#interval)
    this.#heartbeat.unref()
  }

  /** (Re)establish tracking: the subscriber's id, its subscription, then the reader's redirect to it. */
  #prove (): Promise<void> {
    this.#setup ??= this.#track().finally(() => { this.#setup = null })
    return this.#setup
  }

  async #track (): Promise<void> {
    const reader = this.#reader as Redis
    const subscriber = this.#subscriber as Redis
    if (this.#closed || reader.status !== 'ready' || subscriber.status !== 'ready') return
    try {
      if (!this.#subscribed) {
        const id = await subscriber.client('ID')
        this.#subscriberId = Number(id)
        await subscriber.subscribe(INVALIDATE_CHANNEL)
        this.#subscribed = true
        this.#readerTracked = false
        await reader.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id))
        this.#readerTracked = true
      } else if (!this.#readerTracked) {
        // Only the reader reconnected: the subscriber's id still stands, but the redirect must be set again.
        await reader.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(this.#subscriberId))
        this.#readerTracked = true
      }
    } catch {
      // The connections are failing: stay uncached; their next 'ready' tries again.
      return
    }
    this.#beat()
  }

  /** One heartbeat: read the heartbeat key on the tracked reader, write it, and expect its invalidation within maxLag. */
  #beat (): void {
    const reader = this.#reader
    if (this.#closed || reader === null || !this.#readerTracked || !this.#subscribed || this.#awaitingProof !== null) return
    const sentAt = performance.now()
    const timer = setTimeout(() => {
      // The link lags or failed silently: stop answering from memory until a proof arrives in time.
      this.#awaitingProof = null
      this.#reset()
    }, this.#maxLag)
    timer.unref()
    this.#awaitingProof = { sentAt, timer }
    reader.get(this.#heartbeatKey)
      .then(() => this.#client.set(this.#heartbeatKey, String(sentAt), 'PX', this.#interval * 20))
      .catch(() => {
        clearTimeout(timer)
        this.#awaitingProof = null
        this.#reset()
      })
  }

  #invalidate (channel: Buffer, keys: Buffer[] | null): void {
    if (channel.toString() !== INVALIDATE_CHANNEL) return
    this.#generation++
    if (keys === null) {
      // FLUSHALL, or the server's tracking table overflowed: everything may have changed.
      this.#reset()
      return
    }
    for (const key of keys) {
      const name = key.toString()
      if (name === this.#heartbeatKey) {
        this.#proven()
        continue
      }
      this.#cache.delete(name)
    }
  }

  #proven (): void {
    const awaiting = this.#awaitingProof
    if (awaiting === null) return
    clearTimeout(awaiting.timer)
    this.#awaitingProof = null
    this.#stats.enabled = true
  }

  /** Empty the cache and stop answering from memory until the next proof. */
  #reset (): void {
    this.#generation++
    this.#cache.clear()
    if (this.#stats.enabled) this.#stats.resets++
    this.#stats.enabled = false
  }

  #lose (): void {
    this.#readerTracked = false
    if (this.#subscriber?.status !== 'ready') this.#subscribed = false
    this.#reset()
  }

  async check (userId: string, tokenId: string | null, sessionId: string | null): Promise<RevocationState> {
    const base = userKeyBase(this.#keyPrefix, userId)
    const tokenKey = tokenId === null ? null : `${base}t:${tokenId}`
    const sessionKey = sessionId === null ? null : `${base}s:${sessionId}`
    const versionKey = `${base}v`
    if (this.#stats.enabled) {
      const version = this.#cache.get(versionKey)
      const token = tokenKey === null ? null : this.#cache.get(tokenKey)
      const session = sessionKey === null ? null : this.#cache.get(sessionKey)
      if (version !== undefined && token !== undefined && session !== undefined) {
        this.#stats.hits++
        return { tokenRevoked: token !== null, sessionRevoked: session !== null, version: version === null ? 0 : Number(version) }
      }
    }
    this.#stats.misses++
    const reader = this.#reader
    const cacheable = reader !== null && this.#readerTracked && this.#stats.enabled
    const keys = [versionKey, ...(tokenKey === null ? [] : [tokenKey]), ...(sessionKey === null ? [] : [sessionKey])]
    const generation = this.#generation
    // Through the tracked reader when the link is up, so that Redis will tell us of changes.
    const values = await (cacheable ? reader : this.#client).mget(...keys)
    if (cacheable && generation === this.#generation && this.#stats.enabled) {
      keys.forEach((key, i) => this.#remember(key, values[i] ?? null))
    }
    const [version, ...rest] = values
    const token = tokenKey === null ? null : rest.shift() ?? null
    const session = sessionKey === null ? null : rest.shift() ?? null
    return { tokenRevoked: token !== null, sessionRevoked: session !== null, version: version === null ? 0 : Number(version) }
  }

  #remember (key: string, value: string | null): void {
    if (!this.#cache.has(key) && this.#cache.size >= this.#maxEntries) {
      this.#cache.delete(this.#cache.keys().next().value as string)
    }
    this.#cache.set(key, value)
  }

  // Writes go through the app's client; Redis then invalidates every instance's copy,
  // this one's included. Dropping it here too spares this instance the wait.
  async revokeToken (userId: string, tokenId: string, expiresAt: number): Promise<void> {
    this.#cache.delete(`${userKeyBase(this.#keyPrefix, userId)}t:${tokenId}`)
    await this.#writes.revokeToken(userId, tokenId, expiresAt)
  }

  async revokeSession (userId: string, sessionId: string, expiresAt: number): Promise<void> {
    this.#cache.delete(`${userKeyBase(this.#keyPrefix, userId)}s:${sessionId}`)
    await this.#writes.revokeSession(userId, sessionId, expiresAt)
  }

  async getTokenVersion (userId: string): Promise<number> {
    return await this.#writes.getTokenVersion(userId)
  }

  async bumpTokenVersion (userId: string): Promise<number> {
    this.#cache.delete(`${userKeyBase(this.#keyPrefix, userId)}v`)
    return await this.#writes.bumpTokenVersion(userId)
  }

  /** Close the two connections this store opened; the app's client is left alone. */
  async close (): Promise<void> {
    this.#closed = true
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat)
    if (this.#awaitingProof !== null) clearTimeout(this.#awaitingProof.timer)
    this.#reset()
    this.#reader?.disconnect()
    this.#subscriber?.disconnect()
  }
}
