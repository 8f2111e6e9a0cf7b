/**
 * The PostgreSQL stores: revocation and refresh tokens in the database the app already
 * runs, shared by every instance. They take the app's pool and never load a driver.
 * Every operation is one statement (one round trip); see the README's PostgreSQL section
 * for the tables and what each operation costs.
 */
import type {
  CreateSessionInput,
  CreateSessionResult,
  RefreshTokenStore,
  RotateInput,
  RotationFacts,
  SessionRecord,
  TokenFacts
} from './types.js'
import { postgresRefreshTokenSchema, postgresRevocationSchema, sweepTable, type PostgresStoreOptions } from './postgres-schema.js'
import { PostgresStore } from './postgres-store.js'
import { PostgresRevocationStore } from './postgres-revocation.js'

export {
  DEFAULT_POSTGRES_SWEEP_BATCH_SIZE,
  DEFAULT_POSTGRES_SWEEP_INTERVAL,
  DEFAULT_POSTGRES_TABLE_PREFIX,
  POSTGRES_SWEEP_MAX_BATCHES,
  postgresRefreshTokenSchema,
  postgresRevocationSchema,
  postgresSchema,
  type PostgresQueryable,
  type PostgresStoreOptions
} from './postgres-schema.js'

export { PostgresRevocationStore } from './postgres-revocation.js'

const UNIQUE_VIOLATION = '23505'

/** Options of the PostgreSQL refresh-token store. */
export interface PostgresRefreshTokenStoreOptions extends PostgresStoreOptions {
  /**
   * The PostgreSQL revocation store of the app, on the same pool and `tablePrefix`: its
   * token versions are then read inside the login and refresh statements, one round
   * trip each instead of two (only while the app's revocation store is this one).
   * @default undefined (the versions are read from the revocation store, a round trip of their own)
   */
  tokenVersionsOf?: PostgresRevocationStore
}

const SESSION_COLUMNS = 'session_id, user_id, version, created_at, last_used_at, expires_at, user_agent, ip, live_hash'

interface SessionRow {
  session_id: string
  user_id: string
  version: string
  created_at: string
  last_used_at: string
  expires_at: string
  user_agent: string | null
  ip: string | null
  live_hash: string
  rotated_at?: string | null
  child_hash?: string | null
}

function sessionOf (row: SessionRow): SessionRecord {
  return {
    sessionId: row.session_id,
    userId: row.user_id,
    version: Number(row.version),
    createdAt: Number(row.created_at),
    lastUsedAt: Number(row.last_used_at),
    expiresAt: Number(row.expires_at),
    userAgent: row.user_agent,
    ip: row.ip
  }
}

function factsOf (row: SessionRow): TokenFacts {
  return {
    session: sessionOf(row),
    rotatedAt: row.rotated_at === null || row.rotated_at === undefined ? null : Number(row.rotated_at),
    childHash: row.child_hash ?? null,
    liveHash: row.live_hash
  }
}

/**
 * Refresh-token store in PostgreSQL: a row per session in `<prefix>sessions` (its
 * record and live token) and a row per token it still knows in
 * `<prefix>refresh_tokens` (hashes only). A rotation is one statement whose
 * `UPDATE … WHERE live_hash = $presented` row lock lets exactly one of concurrent
 * rotations of a token win; no transaction is held open across round trips.
 */
export class PostgresRefreshTokenStore extends PostgresStore implements RefreshTokenStore {
  readonly readsTokenVersions: boolean
  readonly tokenVersionsOf?: PostgresRevocationStore
  readonly #sql: { create: string, find: string, rotate: string, list: string, deleteSession: string, deleteUser: string }

  constructor (options: PostgresRefreshTokenStoreOptions) {
    super(options, 'PostgresRefreshTokenStore')
    const versionsOf = options.tokenVersionsOf
    if (versionsOf !== undefined) {
      if (!(versionsOf instanceof PostgresRevocationStore) || !this.sharesTablesWith(versionsOf)) {
        throw new TypeError('PostgresRefreshTokenStore: tokenVersionsOf must be a PostgresRevocationStore on the same pool and tablePrefix')
      }
      this.tokenVersionsOf = versionsOf
    }
    this.readsTokenVersions = versionsOf !== undefined
    const { sessions, tokens, versions } = this.tableNames
    // Only a store that reads versions names their table: it may live elsewhere otherwise.
    const currentVersion = (user: string): string => this.readsTokenVersions ? `COALESCE((SELECT version FROM ${versions} WHERE user_id = ${user}), 0)` : 'NULL::bigint'
    this.#sql = {
      // Eviction keeps the maxSessions − 1 most recently used live sessions; the insert
      // adds the new one. A duplicate session id fails the whole statement, evictions included.
      create: `WITH evicted AS (
  DELETE FROM ${sessions} WHERE session_id IN (
    SELECT session_id FROM ${sessions} WHERE user_id = $2 AND expires_at > $10
    ORDER BY last_used_at DESC, created_at DESC, session_id DESC OFFSET GREATEST($11::int - 1, 0))
  RETURNING session_id, last_used_at, created_at
), recorded AS (
  SELECT CASE WHEN $12::boolean THEN ${currentVersion('$2')} ELSE $3::bigint END AS version
), inserted AS (
  INSERT INTO ${sessions} (${SESSION_COLUMNS}, gen)
  SELECT $1, $2, recorded.version, $4, $5, $6, $7, $8, $9, 0 FROM recorded WHERE $6::bigint > $10::bigint
  RETURNING session_id
), first_token AS (
  INSERT INTO ${tokens} (session_id, hash, gen) SELECT session_id, $9, 0 FROM inserted
)
SELECT (SELECT version FROM recorded) AS version,
  ARRAY(SELECT session_id FROM evicted ORDER BY last_used_at, created_at, session_id) AS evicted`,
      find: `SELECT ${SESSION_COLUMNS.split(', ').map(c => `s.${c}`).join(', ')}, t.rotated_at, t.child_hash
FROM ${sessions} s JOIN ${tokens} t ON t.session_id = s.session_id AND t.hash = $3
WHERE s.session_id = $2 AND s.user_id = $1 AND s.expires_at > $4`,
      // The conditional UPDATE is the rotation: of concurrent ones, the first takes the
      // row lock; the others wait, find live_hash changed and update nothing. The other
      // branch reports a token that was not rotated, from the statement's snapshot.
      rotate: `WITH rotated AS (
  UPDATE ${sessions} SET live_hash = $4::text, gen = gen + 1, last_used_at = $5, expires_at = $6,
    user_agent = COALESCE($7::text, user_agent), ip = COALESCE($8::text, ip)
  WHERE session_id = $2 AND user_id = $1 AND live_hash = $3::text AND expires_at > $5
  RETURNING ${SESSION_COLUMNS}, gen
), parent AS (
  UPDATE ${tokens} t SET rotated_at = $5, child_hash = $4::text
  FROM rotated r WHERE t.session_id = r.session_id AND t.hash = $3::text
), child AS (
  INSERT INTO ${tokens} (session_id, hash, gen) SELECT session_id, $4::text, gen FROM rotated
), forgotten AS (
  DELETE FROM ${tokens} t USING rotated r WHERE t.session_id = r.session_id AND t.gen < r.gen - $9::int
)
SELECT true AS rotated, ${SESSION_COLUMNS}, NULL::bigint AS rotated_at, NULL::text AS child_hash, ${currentVersion('$1')} AS current_version FROM rotated
UNION ALL
SELECT false, ${SESSION_COLUMNS.split(', ').map(c => `s.${c}`).join(', ')}, t.rotated_at, t.child_hash, ${currentVersion('$1')}
FROM ${sessions} s JOIN ${tokens} t ON t.session_id = s.session_id AND t.hash = $3::text
WHERE s.session_id = $2 AND s.user_id = $1 AND s.expires_at > $5 AND NOT EXISTS (SELECT 1 FROM rotated)`,
      list: `SELECT ${SESSION_COLUMNS} FROM ${sessions} WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, session_id`,
      deleteSession: `DELETE FROM ${sessions} WHERE session_id = $2 AND user_id = $1 RETURNING expires_at`,
      deleteUser: `WITH ended AS (DELETE FROM ${sessions} WHERE user_id = $1 RETURNING expires_at)
SELECT count(*) FILTER (WHERE expires_at > $2)::int AS live FROM ended`
    }
  }

  /** Its own tables, and the versions' table when it reads it (created by either store first). */
  protected schema (): string {
    const prefix = this.options.tablePrefix
    return this.readsTokenVersions ? `${postgresRevocationSchema(prefix)}${postgresRefreshTokenSchema(prefix)}` : postgresRefreshTokenSchema(prefix)
  }

  protected tables (): string[] {
    const { sessions, tokens, versions } = this.tableNames
    return this.readsTokenVersions ? [sessions, tokens, versions] : [sessions, tokens]
  }

  async create (input: CreateSessionInput): Promise<CreateSessionResult> {
    const { session, tokenHash, now, maxSessions } = input
    const fromStore = input.versionFromStore === true && this.readsTokenVersions
    let rows: Array<{ version: string, evicted: string[] }>
    try {
      ({ rows } = await this.run(this.#sql.create, [
        session.sessionId, session.userId, session.version, session.createdAt, session.lastUsedAt, session.expiresAt,
        session.userAgent, session.ip, tokenHash, now, maxSessions, fromStore
      ]))
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === UNIQUE_VIOLATION) throw new Error('session id already stored', { cause: err })
      throw err
    }
    const evicted = rows[0].evicted
    return fromStore ? { evicted, version: Number(rows[0].version) } : { evicted }
  }

  async find (userId: string, sessionId: string, hash: string, now: number): Promise<TokenFacts | null> {
    const { rows } = await this.run(this.#sql.find, [userId, sessionId, hash, now])
    return rows.length === 0 ? null : factsOf(rows[0])
  }

  async rotate (input: RotateInput): Promise<RotationFacts | null> {
    const { rows } = await this.run(this.#sql.rotate, [
      input.userId, input.sessionId, input.hash, input.childHash, input.now, input.childExpiresAt,
      input.userAgent, input.ip, input.keepRotated
    ])
    const row = rows[0] as (SessionRow & { rotated: boolean, current_version: string | null }) | undefined
    if (row === undefined) return null
    let facts: RotationFacts
    if (!row.rotated && (row.rotated_at === null || row.rotated_at === undefined)) {
      // Lost a race: a concurrent rotation committed after this statement's snapshot,
      // which still shows the token live. A new statement sees what the winner did.
      const after = await this.find(input.userId, input.sessionId, input.hash, input.now)
      if (after === null) return null
      facts = { ...after, rotated: false }
    } else {
      facts = { ...factsOf(row), rotated: row.rotated }
    }
    if (this.readsTokenVersions) facts.currentVersion = Number(row.current_version)
    return facts
  }

  async listSessions (userId: string, now: number): Promise<SessionRecord[]> {
    const { rows } = await this.run(this.#sql.list, [userId, now])
    return rows.map(sessionOf)
  }

  async deleteSession (userId: string, sessionId: string): Promise<boolean> {
    const { rows } = await this.run(this.#sql.deleteSession, [userId, sessionId])
    return rows.length > 0 && Number(rows[0].expires_at) > this.options.now()
  }

  async deleteUser (userId: string): Promise<number> {
    const { rows } = await this.run(this.#sql.deleteUser, [userId, this.options.now()])
    return Number(rows[0].live)
  }

  /** Delete expired sessions (their tokens go with them, `ON DELETE CASCADE`). */
  async sweep (): Promise<number> {
    return await sweepTable(this.pool, this.tableNames.sessions, this.options.now(), this.options.sweepBatchSize)
  }
}
