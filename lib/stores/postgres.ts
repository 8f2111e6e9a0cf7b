/**
 * The PostgreSQL stores: revocation and refresh tokens in the database the app already
 * runs, shared by every instance. They take the app's pool and never load a driver.
 * Every operation is one statement (one round trip); see the README's PostgreSQL section
 * for the tables and what each operation costs.
 */
import { createHash } from 'node:crypto'
import type {
  CreateSessionInput,
  CreateSessionResult,
  RefreshTokenStore,
  RevocationState,
  RevocationStore,
  RotateInput,
  RotationFacts,
  SessionRecord,
  TokenFacts
} from './types.js'
import {
  DEFAULT_POSTGRES_TABLE_PREFIX,
  checkPostgresOptions,
  createSchema,
  postgresRefreshTokenSchema,
  postgresRevocationSchema,
  startSweeper,
  sweepTable,
  tableNames,
  type PostgresQueryable,
  type PostgresStoreOptions,
  type ResolvedPostgresOptions
} from './postgres-schema.js'

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

const UNIQUE_VIOLATION = '23505'

/** node-postgres' `query(config)`, with a statement name. */
interface NamedQueryable {
  query (config: { name: string, text: string, values: unknown[] }): Promise<{ rows: any[] }>
}

/** A sweep's and `init()`'s shared steps. */
abstract class PostgresStore {
  protected readonly pool: PostgresQueryable
  protected readonly options: ResolvedPostgresOptions
  /** The names of the tables of this store's `tablePrefix` (both stores'). */
  readonly tableNames: ReturnType<typeof tableNames>
  #stopSweeper: (() => void) | null = null
  readonly #names = new Map<string, string>()

  readonly #name: string

  constructor (options: PostgresStoreOptions, name: string) {
    this.#name = name
    this.options = checkPostgresOptions(options, name)
    this.pool = this.options.pool
    this.tableNames = tableNames(this.options.tablePrefix)
  }

  /**
   * Run one of the store's statements. On node-postgres, as a named prepared statement:
   * each connection parses and plans it once instead of on every call. The name is
   * derived from the text, so two texts never share one.
   */
  protected run (text: string, values: unknown[]): Promise<{ rows: any[] }> {
    if (!this.options.preparedStatements) return this.pool.query(text, values)
    let name = this.#names.get(text)
    if (name === undefined) {
      name = `rjwt_${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`
      this.#names.set(text, name)
    }
    return (this.pool as unknown as NamedQueryable).query({ name, text, values })
  }

  /** Both stores on one pool and one set of tables. */
  protected sharesTablesWith (other: PostgresStore): boolean {
    return other.uses(this.pool, this.options.tablePrefix)
  }

  /** This store queries `pool` and the tables of `tablePrefix` (default `'rjwt_'`). */
  uses (pool: PostgresQueryable, tablePrefix = DEFAULT_POSTGRES_TABLE_PREFIX): boolean {
    return pool === this.pool && tablePrefix === this.options.tablePrefix
  }

  protected abstract schema (): string
  /** The tables the store's statements name. */
  protected abstract tables (): string[]
  /** Delete expired rows now, in bounded batches; returns how many. */
  abstract sweep (): Promise<number>

  /**
   * Create the tables and indexes when missing (unless `createTables: false`), under an
   * advisory lock so that instances booting together do not race; then start the sweeper.
   */
  async init (): Promise<void> {
    let missing: string[]
    try {
      if (this.options.createTables) {
        await createSchema(this.pool, this.options.tablePrefix, this.schema())
        missing = []
      } else {
        const { rows } = await this.pool.query('SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL', [this.tables()])
        missing = rows.map(row => row.name as string)
      }
    } catch (err) {
      throw new Error(`${this.#name}: cannot prepare its tables: ${(err as Error).message}`, { cause: err })
    }
    if (missing.length > 0) {
      throw new Error(`${this.#name}: missing tables ${missing.join(', ')}: run postgresSchema() from your migrations, or leave createTables on`)
    }
    this.#stopSweeper ??= startSweeper(this.options.sweepInterval, () => this.sweep())
  }

  /** Stop the sweeper. Does not end the pool: the store did not create it. */
  async close (): Promise<void> {
    this.#stopSweeper?.()
    this.#stopSweeper = null
  }
}

/**
 * Revocation store in PostgreSQL. Revoked token and session ids live in
 * `<prefix>revoked` until the tokens they revoke would expire; versions in
 * `<prefix>token_versions`. `check()` is one `SELECT` of three index lookups.
 */
export class PostgresRevocationStore extends PostgresStore implements RevocationStore {
  readonly #sql: { check: string, revoke: string, get: string, bump: string, table: string }

  constructor (options: PostgresStoreOptions) {
    super(options, 'PostgresRevocationStore')
    const { revoked, versions } = tableNames(this.options.tablePrefix)
    this.#sql = {
      table: revoked,
      // A null id compares as unknown: EXISTS is then false, as the interface asks.
      check: `SELECT
  EXISTS (SELECT 1 FROM ${revoked} WHERE user_id = $1 AND kind = 't' AND id = $2 AND expires_at > $4) AS token,
  EXISTS (SELECT 1 FROM ${revoked} WHERE user_id = $1 AND kind = 's' AND id = $3 AND expires_at > $4) AS session,
  COALESCE((SELECT version FROM ${versions} WHERE user_id = $1), 0) AS version`,
      revoke: `INSERT INTO ${revoked} (user_id, kind, id, expires_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, kind, id) DO UPDATE SET expires_at = GREATEST(${revoked}.expires_at, EXCLUDED.expires_at)`,
      get: `SELECT version FROM ${versions} WHERE user_id = $1`,
      bump: `INSERT INTO ${versions} (user_id, version) VALUES ($1, 1)
ON CONFLICT (user_id) DO UPDATE SET version = ${versions}.version + 1 RETURNING version`
    }
  }

  protected schema (): string {
    return postgresRevocationSchema(this.options.tablePrefix)
  }

  protected tables (): string[] {
    return [this.tableNames.revoked, this.tableNames.versions]
  }

  async check (userId: string, tokenId: string | null, sessionId: string | null): Promise<RevocationState> {
    const { rows } = await this.run(this.#sql.check, [userId, tokenId, sessionId, this.options.now()])
    const row = rows[0]
    return { tokenRevoked: row.token === true, sessionRevoked: row.session === true, version: Number(row.version) }
  }

  async #revoke (kind: 't' | 's', userId: string, id: string, expiresAt: number): Promise<void> {
    // Nothing to keep: the token it would revoke has expired already.
    if (!(expiresAt > this.options.now())) return
    await this.run(this.#sql.revoke, [userId, kind, id, Math.ceil(expiresAt)])
  }

  revokeToken (userId: string, tokenId: string, expiresAt: number): Promise<void> {
    return this.#revoke('t', userId, tokenId, expiresAt)
  }

  revokeSession (userId: string, sessionId: string, expiresAt: number): Promise<void> {
    return this.#revoke('s', userId, sessionId, expiresAt)
  }

  async getTokenVersion (userId: string): Promise<number> {
    const { rows } = await this.run(this.#sql.get, [userId])
    return rows.length === 0 ? 0 : Number(rows[0].version)
  }

  async bumpTokenVersion (userId: string): Promise<number> {
    const { rows } = await this.run(this.#sql.bump, [userId])
    return Number(rows[0].version)
  }

  async sweep (): Promise<number> {
    return await sweepTable(this.pool, this.#sql.table, this.options.now(), this.options.sweepBatchSize)
  }
}

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
  readonly #sql: { create: string, find: string, rotate: string, list: string, deleteSession: string, deleteUser: string, table: string }

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
    const { sessions, tokens, versions } = tableNames(this.options.tablePrefix)
    // Only a store that reads versions names their table: it may live elsewhere otherwise.
    const currentVersion = (user: string): string => this.readsTokenVersions ? `COALESCE((SELECT version FROM ${versions} WHERE user_id = ${user}), 0)` : 'NULL::bigint'
    this.#sql = {
      table: sessions,
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
    return await sweepTable(this.pool, this.#sql.table, this.options.now(), this.options.sweepBatchSize)
  }
}
