import type { Cluster, Redis } from 'ioredis'
import type {
  RefreshTokenRecord,
  RefreshTokenStore,
  RevocationState,
  RevocationStore,
  RotateInput,
  RotateResult,
  SessionRecord
} from '../../types/index.js'
import { MAX_ROTATED_PER_SESSION } from './memory.js'
import { DEFAULT_REDIS_KEY_PREFIX } from '../options.js'

/** Options of the Redis stores. */
export interface RedisStoreOptions {
  /**
   * The ioredis client (a `Redis` or a `Cluster`). The store never quits it: it
   * belongs to whoever created it (with the plugin's `redis` option, @fastify/redis).
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

export { DEFAULT_REDIS_KEY_PREFIX }

/** Names under which the stores define their Lua scripts on the client (`defineCommand`). */
const COMMAND_PREFIX = 'revocableJwt'

interface ResolvedRedisStoreOptions {
  client: Redis | Cluster
  keyPrefix: string
  now: () => number
}

function checkRedisOptions (options: RedisStoreOptions, name: string): ResolvedRedisStoreOptions {
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

/**
 * Revocation store in Redis, shared by every instance of a service.
 *
 * Keys (`<base>` = `keyPrefix{base64url(userId)}:`):
 * - `<base>t:<jti>`: a revoked access token, `PX` until it would expire;
 * - `<base>s:<sid>`: a revoked session, `PX` until its last access token would expire;
 * - `<base>v`: the user's token version (`INCR`, no TTL).
 *
 * `check()` is one `MGET` of the three keys: one round trip, also on a Cluster.
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

  async check (userId: string, tokenId: string, sessionId: string): Promise<RevocationState> {
    const base = userKeyBase(this.#keyPrefix, userId)
    const [token, session, version] = await this.#client.mget(`${base}t:${tokenId}`, `${base}s:${sessionId}`, `${base}v`)
    return {
      tokenRevoked: token !== null,
      sessionRevoked: session !== null,
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

  /** Does not quit the client: the store did not create it. */
  async close (): Promise<void> {}
}

// The refresh-token scripts. Every key they touch starts with the user's base, so
// all of them are in one Cluster slot. KEYS[1] is always `<base>ru` and the base is
// taken from it inside the script, so that an ioredis `keyPrefix` applied to KEYS
// also applies to the keys a script derives (session indexes, records).
//
// Records are hashes `<base>r:<hash>` (null fields absent) with PX until `expiresAt`.
// Indexes are sorted sets scored by expiry: `<base>rs:<sid>` (hashes of the session)
// and `<base>ru` (sessions of the user). Each write prunes the members that have
// expired and sets the index's TTL to its newest member's, so neither grows without bound.
const LUA_HELPERS = `
local base = string.sub(KEYS[1], 1, -3)
local function index (key, score, member, now)
  redis.call('ZADD', key, 'GT', score, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] ~= nil then
    redis.call('PEXPIRE', key, math.max(1, tonumber(newest[2]) - now))
  end
end
local function fields (flat)
  local record = {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  return record
end
`

/** KEYS: ru, r:<hash>, rs:<sid>. ARGV: now, expiresAt, sessionId, hash, then the record's field/value pairs. */
const CREATE_SCRIPT = `${LUA_HELPERS}
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('ERR refresh token hash already stored')
end
local now = tonumber(ARGV[1])
local expiresAt = tonumber(ARGV[2])
if expiresAt <= now then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[2], expiresAt - now)
index(KEYS[3], expiresAt, ARGV[4], now)
index(KEYS[1], expiresAt, ARGV[3], now)
return 1
`

/**
 * KEYS: ru, r:<hash>, r:<childHash>. ARGV: userId, childHash, childExpiresAt, now,
 * graceMs, userAgent, ip (each of those two `-` for null or `+` and the value),
 * the most rotated ancestors a session keeps.
 * Returns { outcome } or { outcome, record fields }.
 */
const ROTATE_SCRIPT = `${LUA_HELPERS}
local flat = redis.call('HGETALL', KEYS[2])
if #flat == 0 then return { 'not-found' } end
local record = fields(flat)
local now = tonumber(ARGV[4])
if record.userId ~= ARGV[1] or tonumber(record.expiresAt) <= now then return { 'not-found' } end
if record.rotatedAt then
  if now - tonumber(record.rotatedAt) <= tonumber(ARGV[5]) then return { 'grace', flat } end
  return { 'reused', flat }
end
local childExpiresAt = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'rotatedAt', ARGV[4], 'childHash', ARGV[2])
local child = {
  'hash', ARGV[2], 'sessionId', record.sessionId, 'userId', record.userId,
  'version', record.version, 'sessionCreatedAt', record.sessionCreatedAt,
  'createdAt', ARGV[4], 'expiresAt', ARGV[3], 'lastUsedAt', ARGV[4]
}
local userAgent = record.userAgent
if string.sub(ARGV[6], 1, 1) == '+' then userAgent = string.sub(ARGV[6], 2) end
if userAgent then table.insert(child, 'userAgent'); table.insert(child, userAgent) end
local ip = record.ip
if string.sub(ARGV[7], 1, 1) == '+' then ip = string.sub(ARGV[7], 2) end
if ip then table.insert(child, 'ip'); table.insert(child, ip) end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], unpack(child))
redis.call('PEXPIRE', KEYS[3], math.max(1, childExpiresAt - now))
local sessionIndex = base .. 'rs:' .. record.sessionId
index(sessionIndex, childExpiresAt, ARGV[2], now)
-- Keep at most ARGV[8] rotated ancestors (scored by expiry, so the oldest first): a
-- session refreshed in a loop cannot grow without bound. A forgotten ancestor
-- presented again is not found (invalid) instead of detected as reused.
local excess = redis.call('ZCARD', sessionIndex) - 1 - tonumber(ARGV[8])
if excess > 0 then
  for _, oldest in ipairs(redis.call('ZRANGE', sessionIndex, 0, excess - 1)) do
    redis.call('DEL', base .. 'r:' .. oldest)
  end
  redis.call('ZREMRANGEBYRANK', sessionIndex, 0, excess - 1)
end
index(KEYS[1], childExpiresAt, record.sessionId, now)
return { 'rotated', redis.call('HGETALL', KEYS[2]) }
`

/** KEYS: ru. ARGV: now. Returns the newest unexpired, unrotated record of each live session. */
const LIST_SCRIPT = `${LUA_HELPERS}
local out = {}
local sessions = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
for _, sessionId in ipairs(sessions) do
  local hashes = redis.call('ZREVRANGEBYSCORE', base .. 'rs:' .. sessionId, '+inf', '(' .. ARGV[1])
  for _, hash in ipairs(hashes) do
    local flat = redis.call('HGETALL', base .. 'r:' .. hash)
    local record = fields(flat)
    if #flat > 0 and not record.rotatedAt and tonumber(record.expiresAt) > tonumber(ARGV[1]) then
      table.insert(out, flat)
      break
    end
  end
end
return out
`

/** KEYS: ru, rs:<sid>. ARGV: sessionId. Returns 1 when the session existed. */
const DELETE_SESSION_SCRIPT = `${LUA_HELPERS}
local hashes = redis.call('ZRANGE', KEYS[2], 0, -1)
local listed = redis.call('ZREM', KEYS[1], ARGV[1])
for _, hash in ipairs(hashes) do redis.call('DEL', base .. 'r:' .. hash) end
redis.call('DEL', KEYS[2])
if #hashes > 0 or listed == 1 then return 1 end
return 0
`

/** KEYS: ru. Returns how many sessions still had tokens. */
const DELETE_USER_SCRIPT = `${LUA_HELPERS}
local ended = 0
for _, sessionId in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = base .. 'rs:' .. sessionId
  local hashes = redis.call('ZRANGE', key, 0, -1)
  if #hashes > 0 then ended = ended + 1 end
  for _, hash in ipairs(hashes) do redis.call('DEL', base .. 'r:' .. hash) end
  redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
return ended
`

const SCRIPTS = {
  [`${COMMAND_PREFIX}Create`]: { lua: CREATE_SCRIPT, numberOfKeys: 3 },
  [`${COMMAND_PREFIX}Rotate`]: { lua: ROTATE_SCRIPT, numberOfKeys: 3 },
  [`${COMMAND_PREFIX}ListSessions`]: { lua: LIST_SCRIPT, numberOfKeys: 1, readOnly: true },
  [`${COMMAND_PREFIX}DeleteSession`]: { lua: DELETE_SESSION_SCRIPT, numberOfKeys: 2 },
  [`${COMMAND_PREFIX}DeleteUser`]: { lua: DELETE_USER_SCRIPT, numberOfKeys: 1 }
}

type ScriptCommand = (...args: Array<string | number>) => Promise<unknown>
interface ScriptCommands {
  revocableJwtCreate: ScriptCommand
  revocableJwtRotate: ScriptCommand
  revocableJwtListSessions: ScriptCommand
  revocableJwtDeleteSession: ScriptCommand
  revocableJwtDeleteUser: ScriptCommand
}

function toFields (record: RefreshTokenRecord): string[] {
  const out: string[] = []
  for (const [name, value] of Object.entries(record)) {
    if (value !== null && value !== undefined) out.push(name, String(value))
  }
  return out
}

function fromFields (flat: string[]): RefreshTokenRecord {
  const f: Record<string, string> = {}
  for (let i = 0; i < flat.length; i += 2) f[flat[i]] = flat[i + 1]
  return {
    hash: f.hash,
    sessionId: f.sessionId,
    userId: f.userId,
    version: Number(f.version),
    sessionCreatedAt: Number(f.sessionCreatedAt),
    createdAt: Number(f.createdAt),
    expiresAt: Number(f.expiresAt),
    lastUsedAt: Number(f.lastUsedAt),
    userAgent: f.userAgent ?? null,
    ip: f.ip ?? null,
    rotatedAt: f.rotatedAt === undefined ? null : Number(f.rotatedAt),
    childHash: f.childHash ?? null
  }
}

function optional (value: string | null): string {
  return value === null ? '-' : `+${value}`
}

/**
 * Refresh-token store in Redis, shared by every instance of a service.
 *
 * Keys (`<base>` = `keyPrefix{base64url(userId)}:`, one Cluster slot per user):
 * - `<base>r:<hash>`: the record, a hash with `PX` until the token expires;
 * - `<base>rs:<sid>`: sorted set of the session's token hashes, scored by expiry;
 * - `<base>ru`: sorted set of the user's session ids, scored by their newest expiry.
 *
 * Every write is one Lua script (ioredis `defineCommand`: EVALSHA, EVAL the first
 * time on a connection), atomic under concurrency; logout-all and the session list
 * read the indexes and never need KEYS or SCAN.
 */
export class RedisRefreshTokenStore implements RefreshTokenStore {
  readonly #commands: ScriptCommands
  readonly #keyPrefix: string
  readonly #now: () => number

  constructor (options: RedisStoreOptions) {
    const { client, keyPrefix, now } = checkRedisOptions(options, 'RedisRefreshTokenStore')
    for (const [name, definition] of Object.entries(SCRIPTS)) {
      // Redefining is harmless: stores sharing a client define the very same scripts.
      client.defineCommand(name, definition)
    }
    this.#commands = client as unknown as ScriptCommands
    this.#keyPrefix = keyPrefix
    this.#now = now
  }

  #base (userId: string): string {
    return userKeyBase(this.#keyPrefix, userId)
  }

  async create (record: RefreshTokenRecord): Promise<void> {
    const base = this.#base(record.userId)
    await this.#commands.revocableJwtCreate(
      `${base}ru`, `${base}r:${record.hash}`, `${base}rs:${record.sessionId}`,
      this.#now(), record.expiresAt, record.sessionId, record.hash, ...toFields(record))
  }

  async rotate (input: RotateInput): Promise<RotateResult> {
    const base = this.#base(input.userId)
    const [outcome, flat] = await this.#commands.revocableJwtRotate(
      `${base}ru`, `${base}r:${input.hash}`, `${base}r:${input.childHash}`,
      input.userId, input.childHash, input.childExpiresAt, input.now, input.graceMs,
      optional(input.userAgent), optional(input.ip), MAX_ROTATED_PER_SESSION) as [RotateResult['outcome'], string[] | undefined]
    if (outcome === 'not-found') return { outcome }
    return { outcome, record: fromFields(flat as string[]) }
  }

  async listSessions (userId: string, now: number): Promise<SessionRecord[]> {
    const rows = await this.#commands.revocableJwtListSessions(`${this.#base(userId)}ru`, now) as string[][]
    return rows.map(fromFields).map(record => ({
      sessionId: record.sessionId,
      userId: record.userId,
      createdAt: record.sessionCreatedAt,
      lastUsedAt: record.lastUsedAt,
      expiresAt: record.expiresAt,
      userAgent: record.userAgent,
      ip: record.ip
    })).sort((a, b) => a.createdAt - b.createdAt)
  }

  async deleteSession (userId: string, sessionId: string): Promise<boolean> {
    const base = this.#base(userId)
    return await this.#commands.revocableJwtDeleteSession(`${base}ru`, `${base}rs:${sessionId}`, sessionId) === 1
  }

  async deleteUser (userId: string): Promise<number> {
    return await this.#commands.revocableJwtDeleteUser(`${this.#base(userId)}ru`) as number
  }

  /** Does not quit the client: the store did not create it. */
  async close (): Promise<void> {}
}
