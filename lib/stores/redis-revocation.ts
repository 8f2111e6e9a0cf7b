import type { Cluster, Redis } from 'ioredis'
import type { RevocationState, RevocationStore } from './types.js'
import { checkRedisOptions, userKeyBase, type RedisStoreOptions } from './redis-keys.js'

/**
 * Revocation store in Redis, shared by every instance of a service.
 *
 * Keys (`<base>` = `keyPrefix{base64url(userId)}:`):
 * - `<base>t:<jti>`: a revoked access token, `PX` until it would expire;
 * - `<base>s:<sid>`: a revoked session, `PX` until its last access token would expire;
 * - `<base>v`: the user's token version (`INCR`, no TTL).
 *
 * `check()` is one `MGET`: one round trip, also on a Cluster.
 */
export class RedisRevocationStore implements RevocationStore {
  readonly #client: Redis | Cluster
  readonly #keyPrefix: string
  readonly #now: () => number

  constructor (options: RedisStoreOptions) {
    const { client, keyPrefix, now } = checkRedisOptions(options, 'RedisRevocationStore')
    this.#client = client
    this.#keyPrefix = keyPrefix
    this.#now = now
  }

  async check (userId: string, tokenId: string | null, sessionId: string | null): Promise<RevocationState> {
    const base = userKeyBase(this.#keyPrefix, userId)
    if (tokenId !== null && sessionId !== null) {
      const [token, session, version] = await this.#client.mget(`${base}t:${tokenId}`, `${base}s:${sessionId}`, `${base}v`)
      return { tokenRevoked: token !== null, sessionRevoked: session !== null, version: version === null ? 0 : Number(version) }
    }
    const keys = [`${base}v`]
    if (tokenId !== null) keys.push(`${base}t:${tokenId}`)
    if (sessionId !== null) keys.push(`${base}s:${sessionId}`)
    const [version, revoked = null] = await this.#client.mget(...keys)
    return {
      tokenRevoked: tokenId !== null && revoked !== null,
      sessionRevoked: sessionId !== null && revoked !== null,
      version: version === null ? 0 : Number(version)
    }
  }

  async #revoke (key: string, expiresAt: number): Promise<void> {
    const ttl = Math.ceil(expiresAt - this.#now())
    // Nothing to keep: the token it would revoke has expired already.
    if (!(ttl > 0)) return
    await this.#client.set(key, '1', 'PX', ttl)
  }

  revokeToken (userId: string, tokenId: string, expiresAt: number): Promise<void> {
    return this.#revoke(`${userKeyBase(this.#keyPrefix, userId)}t:${tokenId}`, expiresAt)
  }

  revokeSession (userId: string, sessionId: string, expiresAt: number): Promise<void> {
    return this.#revoke(`${userKeyBase(this.#keyPrefix, userId)}s:${sessionId}`, expiresAt)
  }

  async getTokenVersion (userId: string): Promise<number> {
    const version = await this.#client.get(`${userKeyBase(this.#keyPrefix, userId)}v`)
    return version === null ? 0 : Number(version)
  }

  bumpTokenVersion (userId: string): Promise<number> {
    return this.#client.incr(`${userKeyBase(this.#keyPrefix, userId)}v`)
  }

  /** Where this store keeps the token versions: a refresh-token store on the same client and prefix can read them. */
  get keyspace (): { client: Redis | Cluster, keyPrefix: string } {
    return { client: this.#client, keyPrefix: this.#keyPrefix }
  }

  /** Does not quit the client: the store did not create it. */
  async close (): Promise<void> {}
}
