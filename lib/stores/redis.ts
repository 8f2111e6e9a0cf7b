import type { Cluster, Redis } from 'ioredis'
import type {
  CreateSessionInput,
  CreateSessionResult,
  RefreshTokenStore,
  RotateInput,
  RotationFacts,
  SessionRecord,
  TokenFacts
} from './types.js'
import { checkRedisOptions, userKeyBase, type RedisStoreOptions } from './redis-keys.js'

export { DEFAULT_REDIS_KEY_PREFIX, userKeyBase, type RedisStoreOptions } from './redis-keys.js'
export { RedisRevocationStore } from './redis-revocation.js'

/** Options of the Redis refresh-token store. */
export interface RedisRefreshTokenStoreOptions extends RedisStoreOptions {
  /**
   * The Redis revocation store of the same client and `keyPrefix` keeps the token
   * versions: read them inside the create and rotate scripts, so that a login and a
   * refresh cost one round trip. The plugin sets it when it builds both stores.
   * @default false
   */
  readsTokenVersions?: boolean
}

/** Names under which the store defines its Lua scripts on the client (`defineCommand`). */
const COMMAND_PREFIX = 'revocableJwt'

// The refresh-token layout. Every key of a user starts with the user's base, so all of
// them are in one Cluster slot. KEYS[1] is always `<base>ru` and the base is taken from
// it inside the scripts, so that an ioredis `keyPrefix` applied to KEYS also applies to
// the keys a script derives.
//
// - `<base>S:<sid>`: one hash per session, `PX` until its live token expires. Fields:
//   the session's record (`userId`, `version`, `createdAt`, `lastUsedAt`, `expiresAt`,
//   `ua`, `ip`), `live` (hash of the live token), `gen` (its generation), and per token
//   `t:<hash>` = `<gen>` while live or `<gen>|<rotatedAt>|<childHash>` once rotated,
//   with `g:<gen>` = `<hash>` so that the oldest can be forgotten in O(1).
// - `<base>ru`: sorted set of the user's session ids scored by expiry, pruned of expired
//   members on every write: the least recently used session is first.
//
// Every script touches a bounded number of fields: one session, or at most the user's
// bounded number of sessions. Listing is a read from the client, not a script.
const LUA_BASE = `
local base = string.sub(KEYS[1], 1, -3)
local function touchIndex (key, now)
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] ~= nil then
    redis.call('PEXPIRE', key, math.max(1, tonumber(newest[2]) - now))
  end
end
`

/**
 * KEYS: ru, S:<sid>. ARGV: now, maxSessions, sessionId, hash, userId, version,
 * createdAt, lastUsedAt, expiresAt, userAgent, ip (each of those two `-` for null or
 * `+` and the value), and `1` to record the user's current version (`<base>v`) instead.
 * Returns { the version recorded, evicted session ids... }.
 */
const CREATE_SCRIPT = `${LUA_BASE}
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('ERR session id already stored')
end
local version = ARGV[6]
if ARGV[12] == '1' then version = redis.call('GET', base .. 'v') or '0' end
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local evicted = {}
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2]) + 1
if excess > 0 then
  evicted = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  for _, sid in ipairs(evicted) do redis.call('UNLINK', base .. 'S:' .. sid) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end
local expiresAt = tonumber(ARGV[9])
if expiresAt <= now then return { version, unpack(evicted) } end
redis.call('HSET', KEYS[2], 'userId', ARGV[5], 'version', version, 'createdAt', ARGV[7],
  'lastUsedAt', ARGV[8], 'expiresAt', ARGV[9], 'live', ARGV[4], 'gen', 0, 't:' .. ARGV[4], '0', 'g:0', ARGV[4])
if string.sub(ARGV[10], 1, 1) == '+' then redis.call('HSET', KEYS[2], 'ua', string.sub(ARGV[10], 2)) end
if string.sub(ARGV[11], 1, 1) == '+' then redis.call('HSET', KEYS[2], 'ip', string.sub(ARGV[11], 2)) end
redis.call('PEXPIRE', KEYS[2], expiresAt - now)
redis.call('ZADD', KEYS[1], expiresAt, ARGV[3])
touchIndex(KEYS[1], now)
return { version, unpack(evicted) }
`

/** The session fields every read returns, in this order, then the presented token's entry. */
const SESSION_FIELDS = ['userId', 'version', 'createdAt', 'lastUsedAt', 'expiresAt', 'ua', 'ip', 'live']

/**
 * KEYS: ru, S:<sid>. ARGV: userId, hash, childHash, now, childExpiresAt, userAgent,
 * ip (`-`/`+value`), keepRotated, sessionId, and `1` to report the user's current
 * version. Returns nil when the token is not a live session's, else { rotated (1/0),
 * the session fields after the call, the token's entry before it, the current version }.
 */
const ROTATE_SCRIPT = `${LUA_BASE}
local current = false
if ARGV[10] == '1' then current = redis.call('GET', base .. 'v') or '0' end
local s = KEYS[2]
local m = redis.call('HMGET', s, 'userId', 'version', 'createdAt', 'lastUsedAt', 'expiresAt', 'ua', 'ip', 'live', 'gen', 't:' .. ARGV[2])
local now = tonumber(ARGV[4])
if not m[1] or m[1] ~= ARGV[1] or not m[10] or tonumber(m[5]) <= now then return nil end
if m[8] ~= ARGV[2] then
  return { 0, m[1], m[2], m[3], m[4], m[5], m[6] or false, m[7] or false, m[8], m[10], current }
end
local gen = tonumber(m[9]) + 1
local child = ARGV[3]
redis.call('HSET', s, 't:' .. ARGV[2], (gen - 1) .. '|' .. ARGV[4] .. '|' .. child,
  't:' .. child, tostring(gen), 'g:' .. gen, child, 'live', child, 'gen', gen,
  'lastUsedAt', ARGV[4], 'expiresAt', ARGV[5])
local ua = m[6]
if string.sub(ARGV[6], 1, 1) == '+' then ua = string.sub(ARGV[6], 2); redis.call('HSET', s, 'ua', ua) end
local ip = m[7]
if string.sub(ARGV[7], 1, 1) == '+' then ip = string.sub(ARGV[7], 2); redis.call('HSET', s, 'ip', ip) end
-- Forget the token that is now one generation beyond the rotated ones kept.
local old = gen - tonumber(ARGV[8]) - 1
if old >= 0 then
  local oldHash = redis.call('HGET', s, 'g:' .. old)
  if oldHash then redis.call('HDEL', s, 'g:' .. old, 't:' .. oldHash) end
end
redis.call('PEXPIRE', s, math.max(1, tonumber(ARGV[5]) - now))
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[9])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
touchIndex(KEYS[1], now)
return { 1, m[1], m[2], m[3], ARGV[4], ARGV[5], ua or false, ip or false, child, m[10], current }
`

/** KEYS: ru, S:<sid>. ARGV: sessionId, now. Returns 1 when a live session was deleted. */
const DELETE_SESSION_SCRIPT = `
local expiresAt = redis.call('HGET', KEYS[2], 'expiresAt')
redis.call('UNLINK', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if expiresAt and tonumber(expiresAt) > tonumber(ARGV[2]) then return 1 end
return 0
`

/** KEYS: ru. ARGV: now. Deletes every session of the user (at most its session limit); returns how many were live. */
const DELETE_USER_SCRIPT = `${LUA_BASE}
local ended = 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  ended = ended + redis.call('UNLINK', base .. 'S:' .. sid)
end
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  redis.call('UNLINK', base .. 'S:' .. sid)
end
redis.call('UNLINK', KEYS[1])
return ended
`

const SCRIPTS = {
  [`${COMMAND_PREFIX}CreateSession`]: { lua: CREATE_SCRIPT, numberOfKeys: 2 },
  [`${COMMAND_PREFIX}RotateToken`]: { lua: ROTATE_SCRIPT, numberOfKeys: 2 },
  [`${COMMAND_PREFIX}DeleteSession`]: { lua: DELETE_SESSION_SCRIPT, numberOfKeys: 2 },
  [`${COMMAND_PREFIX}DeleteUser`]: { lua: DELETE_USER_SCRIPT, numberOfKeys: 1 }
}

type ScriptCommand = (...args: Array<string | number>) => Promise<unknown>
interface ScriptCommands {
  revocableJwtCreateSession: ScriptCommand
  revocableJwtRotateToken: ScriptCommand
  revocableJwtDeleteSession: ScriptCommand
  revocableJwtDeleteUser: ScriptCommand
}

function optional (value: string | null): string {
  return value === null ? '-' : `+${value}`
}

type Field = string | null | false

/** A session from its fields in SESSION_FIELDS order (false/null: absent). */
function sessionOf (sessionId: string, f: Field[]): SessionRecord {
  return {
    sessionId,
    userId: f[0] as string,
    version: Number(f[1]),
    createdAt: Number(f[2]),
    lastUsedAt: Number(f[3]),
    expiresAt: Number(f[4]),
    userAgent: typeof f[5] === 'string' ? f[5] : null,
    ip: typeof f[6] === 'string' ? f[6] : null
  }
}

/** The facts from the session fields, the live hash and a token's entry (`<gen>` or `<gen>|<rotatedAt>|<childHash>`). */
function factsOf (sessionId: string, f: Field[], entry: string): TokenFacts {
  const [, rotatedAt, childHash] = entry.split('|')
  return {
    session: sessionOf(sessionId, f),
    rotatedAt: rotatedAt === undefined ? null : Number(rotatedAt),
    childHash: childHash ?? null,
    liveHash: f[7] as string
  }
}

/**
 * Refresh-token store in Redis, shared by every instance of a service: one hash per
 * session holding its record and its tokens' hashes (see the layout above).
 * Create, rotate and the deletes are each one Lua script (`defineCommand`: EVALSHA),
 * atomic under concurrency; `find` is one `HMGET`, `listSessions` one `ZRANGEBYSCORE`
 * and one pipelined `HMGET` per live session (bounded by the session limit).
 */
export class RedisRefreshTokenStore implements RefreshTokenStore {
  readonly readsTokenVersions: boolean
  readonly #client: Redis | Cluster
  readonly #commands: ScriptCommands
  readonly #keyPrefix: string
  readonly #now: () => number

  constructor (options: RedisRefreshTokenStoreOptions) {
    const { client, keyPrefix, now } = checkRedisOptions(options, 'RedisRefreshTokenStore')
    if (options.readsTokenVersions !== undefined && typeof options.readsTokenVersions !== 'boolean') {
      throw new TypeError('RedisRefreshTokenStore: readsTokenVersions must be a boolean')
    }
    this.readsTokenVersions = options.readsTokenVersions ?? false
    for (const [name, definition] of Object.entries(SCRIPTS)) {
      // Redefining is harmless: stores sharing a client define the very same scripts.
      client.defineCommand(name, definition)
    }
    this.#client = client
    this.#commands = client as unknown as ScriptCommands
    this.#keyPrefix = keyPrefix
    this.#now = now
  }

  #base (userId: string): string {
    return userKeyBase(this.#keyPrefix, userId)
  }

  async create (input: CreateSessionInput): Promise<CreateSessionResult> {
    const { session, tokenHash, now, maxSessions } = input
    const base = this.#base(session.userId)
    const fromStore = input.versionFromStore === true && this.readsTokenVersions
    const [version, ...evicted] = await this.#commands.revocableJwtCreateSession(
      `${base}ru`, `${base}S:${session.sessionId}`,
      now, maxSessions, session.sessionId, tokenHash, session.userId, session.version,
      session.createdAt, session.lastUsedAt, session.expiresAt, optional(session.userAgent), optional(session.ip),
      fromStore ? '1' : '0') as string[]
    return fromStore ? { evicted, version: Number(version) } : { evicted }
  }

  async find (userId: string, sessionId: string, hash: string, now: number): Promise<TokenFacts | null> {
    const fields = await this.#client.hmget(`${this.#base(userId)}S:${sessionId}`, ...SESSION_FIELDS, `t:${hash}`)
    const entry = fields[SESSION_FIELDS.length]
    if (fields[0] !== userId || entry === null || !(Number(fields[4]) > now)) return null
    return factsOf(sessionId, fields, entry)
  }

  async rotate (input: RotateInput): Promise<RotationFacts | null> {
    const base = this.#base(input.userId)
    const reply = await this.#commands.revocableJwtRotateToken(
      `${base}ru`, `${base}S:${input.sessionId}`,
      input.userId, input.hash, input.childHash, input.now, input.childExpiresAt,
      optional(input.userAgent), optional(input.ip), input.keepRotated, input.sessionId, this.readsTokenVersions ? '1' : '0') as [number, ...Field[]] | null
    if (reply === null) return null
    const [rotated, ...fields] = reply
    const facts: RotationFacts = { ...factsOf(input.sessionId, fields, fields[8] as string), rotated: rotated === 1 }
    if (this.readsTokenVersions) facts.currentVersion = Number(fields[9])
    return facts
  }

  async listSessions (userId: string, now: number): Promise<SessionRecord[]> {
    const base = this.#base(userId)
    const ids = await this.#client.zrangebyscore(`${base}ru`, `(${now}`, '+inf')
    if (ids.length === 0) return []
    const pipeline = this.#client.pipeline()
    for (const sessionId of ids) pipeline.hmget(`${base}S:${sessionId}`, ...SESSION_FIELDS)
    const replies = await pipeline.exec() as Array<[Error | null, Field[]]>
    const sessions: SessionRecord[] = []
    replies.forEach(([err, fields], i) => {
      if (err !== null) throw err
      if (fields[0] === userId && Number(fields[4]) > now) sessions.push(sessionOf(ids[i], fields))
    })
    return sessions.sort((a, b) => a.createdAt - b.createdAt)
  }

  async deleteSession (userId: string, sessionId: string): Promise<boolean> {
    const base = this.#base(userId)
    return await this.#commands.revocableJwtDeleteSession(`${base}ru`, `${base}S:${sessionId}`, sessionId, this.#now()) === 1
  }

  async deleteUser (userId: string): Promise<number> {
    return await this.#commands.revocableJwtDeleteUser(`${this.#base(userId)}ru`, this.#now()) as number
  }

  /** Does not quit the client: the store did not create it. */
  async close (): Promise<void> {}
}
