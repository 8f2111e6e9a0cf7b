import { checkOptionNames } from '../options.js'
import type { PostgresQueryable } from '../stores/postgres-schema.js'

/**
 * Keep the stores in PostgreSQL through the app's own pool (node-postgres `pg`, or
 * anything with its `query(text, values)`). The plugin builds the PostgreSQL stores on it
 * and stops their sweepers with the app; the pool stays the app's to end.
 */
export interface RevocableJwtPostgresOptions {
  /** The app's `pg` Pool. Give it an `error` listener: an unheard one ends the process when the server goes away. */
  pool: PostgresQueryable
  /**
   * Prefix of the tables' names (lower-case letters, digits, `_`).
   * @default 'rjwt_'
   */
  tablePrefix?: string
  /**
   * Create missing tables and indexes when the app is ready (under an advisory lock).
   * @default true
   */
  createTables?: boolean
  /**
   * How often expired rows are deleted, in ms; `0` never.
   * @default 60000
   */
  sweepInterval?: number
}

export const POSTGRES_OPTION_NAMES = ['pool', 'tablePrefix', 'createTables', 'sweepInterval'] as const

/** Checked further by the stores' constructors, which name the option that is wrong. */
export function resolvePostgresOptions (postgres: RevocableJwtPostgresOptions | undefined, redis: unknown): RevocableJwtPostgresOptions | undefined {
  if (postgres === undefined) return undefined
  checkOptionNames(postgres, POSTGRES_OPTION_NAMES, 'postgres')
  if (redis !== undefined) throw new TypeError('give redis or postgres, not both: the stores live in one of them')
  const pool = postgres.pool as unknown as Record<string, unknown> | null | undefined
  if (pool === null || typeof pool !== 'object' || typeof pool.query !== 'function') {
    throw new TypeError('postgres.pool must be a pg Pool (or an object with query(text, values))')
  }
  return postgres
}
