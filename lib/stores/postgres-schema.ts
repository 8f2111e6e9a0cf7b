/**
 * What the PostgreSQL stores share: their options, the tables they use (as SQL a user
 * can run themselves) and the sweeper that deletes expired rows in bounded batches.
 */

/** One query, one round trip: what the stores need of a driver. A node-postgres `Pool` is one. */
export interface PostgresQueryable {
  /**
   * Run `text` with `$1`… bound to `values`; resolve with the rows. Without `values`
   * the text may hold several statements, run as one transaction (the simple query
   * protocol of node-postgres does that): only `init()` sends such a text.
   */
  query (text: string, values?: unknown[]): Promise<{ rows: any[] }>
}

/** Options of the PostgreSQL stores. */
export interface PostgresStoreOptions {
  /**
   * The app's node-postgres `Pool` (or anything with its `query(text, values)`). The
   * store never ends it: it belongs to the app. Give the pool an `error` listener:
   * node-postgres emits an idle connection's loss there, and unheard it ends the process.
   */
  pool: PostgresQueryable
  /**
   * Prefix of the tables' names: lower-case letters, digits and `_`, starting with a
   * letter or `_`. The tables live in the connection's `search_path` (usually `public`).
   * @default 'rjwt_'
   */
  tablePrefix?: string
  /**
   * Create the tables and indexes in `init()` when they are missing. Turn it off when
   * the schema is managed by your migrations (`postgresSchema()` gives the SQL).
   * @default true
   */
  createTables?: boolean
  /**
   * How often expired rows are deleted, in ms; `0` never (then call `sweep()` yourself).
   * Reads ignore expired rows either way.
   * @default 60000
   */
  sweepInterval?: number
  /**
   * Rows one sweep statement deletes at most; a sweep runs at most 10 of them per table.
   * @default 1000
   */
  sweepBatchSize?: number
  /**
   * Send the statements as named prepared statements (node-postgres `query({ name, text,
   * values })`): each connection then parses and plans each statement once.
   * @default true for a node-postgres `Pool` or `Client`, else false
   */
  preparedStatements?: boolean
  /**
   * The clock, in ms since the epoch, that expiry is judged by.
   * @default Date.now
   */
  now?: () => number
}

export const DEFAULT_POSTGRES_TABLE_PREFIX = 'rjwt_'
export const DEFAULT_POSTGRES_SWEEP_INTERVAL = 60_000
export const DEFAULT_POSTGRES_SWEEP_BATCH_SIZE = 1000
/** Batches one sweep deletes at most per table: what is left waits for the next sweep. */
export const POSTGRES_SWEEP_MAX_BATCHES = 10

export interface ResolvedPostgresOptions {
  pool: PostgresQueryable
  tablePrefix: string
  createTables: boolean
  sweepInterval: number
  sweepBatchSize: number
  preparedStatements: boolean
  now: () => number
}

/** A node-postgres `Pool` (it counts its clients) or `Client` (it escapes identifiers): they take `query({ name, text, values })`. */
function isNodePostgres (pool: Record<string, unknown>): boolean {
  return (typeof pool.totalCount === 'number' && typeof pool.connect === 'function') || typeof pool.escapeIdentifier === 'function'
}

export function checkPostgresOptions (options: PostgresStoreOptions, name: string): ResolvedPostgresOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`${name}: options must be an object`)
  const pool = options.pool as unknown as Record<string, unknown> | null | undefined
  if (pool === null || typeof pool !== 'object' || typeof pool.query !== 'function') {
    throw new TypeError(`${name}: pool must be a pg Pool (or an object with query(text, values))`)
  }
  const tablePrefix = options.tablePrefix ?? DEFAULT_POSTGRES_TABLE_PREFIX
  if (typeof tablePrefix !== 'string' || !/^[a-z_][a-z0-9_]{0,29}$/.test(tablePrefix)) {
    throw new TypeError(`${name}: tablePrefix must be lower-case letters, digits and "_", starting with a letter or "_", at most 30 characters (PostgreSQL cuts longer names)`)
  }
  const createTables = options.createTables ?? true
  if (typeof createTables !== 'boolean') throw new TypeError(`${name}: createTables must be a boolean`)
  const sweepInterval = options.sweepInterval ?? DEFAULT_POSTGRES_SWEEP_INTERVAL
  if (!Number.isSafeInteger(sweepInterval) || sweepInterval < 0) throw new RangeError(`${name}: sweepInterval must be a non-negative integer number of ms`)
  const sweepBatchSize = options.sweepBatchSize ?? DEFAULT_POSTGRES_SWEEP_BATCH_SIZE
  if (!Number.isSafeInteger(sweepBatchSize) || sweepBatchSize < 1) throw new RangeError(`${name}: sweepBatchSize must be a positive integer`)
  const preparedStatements = options.preparedStatements ?? isNodePostgres(pool)
  if (typeof preparedStatements !== 'boolean') throw new TypeError(`${name}: preparedStatements must be a boolean`)
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new TypeError(`${name}: now must be a function`)
  return { pool: options.pool, tablePrefix, createTables, sweepInterval, sweepBatchSize, preparedStatements, now }
}

/** The tables of one prefix. */
export function tableNames (prefix: string): { revoked: string, versions: string, sessions: string, tokens: string } {
  return { revoked: `${prefix}revoked`, versions: `${prefix}token_versions`, sessions: `${prefix}sessions`, tokens: `${prefix}refresh_tokens` }
}

/**
 * The revocation store's tables. Times are ms since the epoch (`bigint`), as the
 * package's interfaces count them.
 */
export function postgresRevocationSchema (prefix = DEFAULT_POSTGRES_TABLE_PREFIX): string {
  const { revoked, versions } = tableNames(prefix)
  return `
CREATE TABLE IF NOT EXISTS ${revoked} (
  user_id text NOT NULL,
  kind "char" NOT NULL CHECK (kind IN ('t', 's')),
  id text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (user_id, kind, id)
);
CREATE INDEX IF NOT EXISTS ${revoked}_expires_at ON ${revoked} (expires_at);
CREATE TABLE IF NOT EXISTS ${versions} (
  user_id text PRIMARY KEY,
  version bigint NOT NULL
);`
}

/** The refresh-token store's tables: a session row, and a row per token it still knows. */
export function postgresRefreshTokenSchema (prefix = DEFAULT_POSTGRES_TABLE_PREFIX): string {
  const { sessions, tokens } = tableNames(prefix)
  return `
CREATE TABLE IF NOT EXISTS ${sessions} (
  session_id text PRIMARY KEY,
  user_id text NOT NULL,
  version bigint NOT NULL,
  created_at bigint NOT NULL,
  last_used_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  user_agent text,
  ip text,
  live_hash text NOT NULL,
  gen integer NOT NULL
);
CREATE INDEX IF NOT EXISTS ${sessions}_user_id_last_used_at ON ${sessions} (user_id, last_used_at);
CREATE INDEX IF NOT EXISTS ${sessions}_expires_at ON ${sessions} (expires_at);
CREATE TABLE IF NOT EXISTS ${tokens} (
  session_id text NOT NULL REFERENCES ${sessions} (session_id) ON DELETE CASCADE,
  hash text NOT NULL,
  gen integer NOT NULL,
  rotated_at bigint,
  child_hash text,
  PRIMARY KEY (session_id, hash),
  UNIQUE (session_id, gen)
);`
}

/**
 * Every table and index of both stores, idempotent (`IF NOT EXISTS`): run it from
 * your migrations, or let the stores' `init()` run their part.
 *
 * @example
 * import { postgresSchema } from 'fastify-revocable-jwt/postgres'
 * await pool.query(postgresSchema())
 */
export function postgresSchema (prefix = DEFAULT_POSTGRES_TABLE_PREFIX): string {
  checkPostgresOptions({ pool: { query: async () => ({ rows: [] }) }, tablePrefix: prefix }, 'postgresSchema')
  return `${postgresRevocationSchema(prefix)}\n${postgresRefreshTokenSchema(prefix)}\n`
}

/**
 * Run a schema under a transaction-scoped advisory lock: two instances booting at once
 * would otherwise race on `CREATE TABLE IF NOT EXISTS` (one of them fails on the
 * catalog's unique index). One text without values: one implicit transaction.
 */
export async function createSchema (pool: PostgresQueryable, prefix: string, schema: string): Promise<void> {
  await pool.query(`SELECT pg_advisory_xact_lock(hashtext('fastify-revocable-jwt schema ${prefix}'));${schema}`)
}

/**
 * Delete expired rows of `table` in batches of `batchSize` (`ctid` of rows found
 * through the `expires_at` index, locked rows skipped so that two instances sweeping at
 * once do not wait on each other), at most POSTGRES_SWEEP_MAX_BATCHES batches.
 * Returns how many rows were deleted.
 */
export async function sweepTable (pool: PostgresQueryable, table: string, now: number, batchSize: number): Promise<number> {
  const text = `WITH gone AS (
  DELETE FROM ${table} WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM ${table} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))
  RETURNING 1)
SELECT count(*)::int AS deleted FROM gone`
  let total = 0
  for (let batch = 0; batch < POSTGRES_SWEEP_MAX_BATCHES; batch++) {
    const { rows } = await pool.query(text, [now, batchSize])
    const deleted = Number(rows[0]?.deleted ?? 0)
    total += deleted
    if (deleted < batchSize) break
  }
  return total
}

/**
 * Run `sweep` every `interval` ms on a timer that never holds the process open. A
 * failed sweep (the server away) is retried at the next tick: reads ignore expired rows.
 */
export function startSweeper (interval: number, sweep: () => Promise<unknown>): () => void {
  if (interval === 0) return () => {}
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    sweep().catch(() => {}).finally(() => { running = false })
  }, interval)
  timer.unref()
  return () => clearInterval(timer)
}
