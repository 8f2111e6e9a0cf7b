// The steps both PostgreSQL stores share: options, init() (tables under an advisory
// lock, or a check that they exist), the sweeper, and how a statement is sent.
import { createHash } from 'node:crypto'
import {
  DEFAULT_POSTGRES_TABLE_PREFIX,
  checkPostgresOptions,
  createSchema,
  startSweeper,
  tableNames,
  type PostgresQueryable,
  type PostgresStoreOptions,
  type ResolvedPostgresOptions
} from './postgres-schema.js'

/** node-postgres' `query(config)`, with a statement name. */
interface NamedQueryable {
  query (config: { name: string, text: string, values: unknown[] }): Promise<{ rows: any[] }>
}

/** What both PostgreSQL stores do alike: init(), the sweeper, close() and sending a statement. */
export abstract class PostgresStore {
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
