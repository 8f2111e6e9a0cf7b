// DATABASE_URL: revocation, refresh tokens, users and the login limiter in PostgreSQL,
// so that several instances on one database behave as one service without Redis.
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { PostgresRefreshTokenStore, PostgresRevocationStore } from '../lib/stores/postgres.js'
import { unavailableOnError, type SelectedStores } from './stores.js'
import type { User, UserRegistry } from './users.js'
import type { LoginLimiter } from './login-limiter.js'
import { LOGIN_FAILURE_WINDOW_MS } from './app.js'
import { createPool } from './pg-pool.js'

/** The example's own tables, next to the package's (`rjwt_*`). */
export const EXAMPLE_SCHEMA = `
CREATE TABLE IF NOT EXISTS example_users (
  id text PRIMARY KEY,
  email text NOT NULL UNIQUE,
  password_hash text NOT NULL
);
CREATE TABLE IF NOT EXISTS example_login_attempts (
  key text PRIMARY KEY,
  count integer NOT NULL,
  reset_at bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS example_known_clients (
  key text PRIMARY KEY,
  until bigint NOT NULL
);`

interface UserRow { id: string, email: string, password_hash: string }

function userOf (row: UserRow | undefined): User | null {
  return row === undefined ? null : { id: row.id, email: row.email, passwordHash: row.password_hash }
}

/** Users in `example_users`; the unique email makes two instances registering one address at once end with one account. */
export class PostgresUserRegistry implements UserRegistry {
  constructor (readonly pool: pg.Pool) {}

  create (email: string, passwordHash: string): Promise<User | null> {
    return unavailableOnError(async () => {
      const { rows } = await this.pool.query('INSERT INTO example_users (id, email, password_hash) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING RETURNING *', [randomUUID(), email, passwordHash])
      return userOf(rows[0])
    })
  }

  findByEmail (email: string): Promise<User | null> {
    return unavailableOnError(async () => userOf((await this.pool.query('SELECT * FROM example_users WHERE email = $1', [email])).rows[0]))
  }

  findById (id: string): Promise<User | null> {
    return unavailableOnError(async () => userOf((await this.pool.query('SELECT * FROM example_users WHERE id = $1', [id])).rows[0]))
  }

  setPasswordHash (id: string, passwordHash: string): Promise<void> {
    return unavailableOnError(async () => { await this.pool.query('UPDATE example_users SET password_hash = $2 WHERE id = $1', [id, passwordHash]) })
  }
}

/**
 * Password attempts in `example_login_attempts`, a fixed window per key: one upsert
 * takes an attempt only while fewer than `max` are taken (starting a new window when
 * the old one has ended). Its row lock serialises concurrent attempts, so none slips
 * past the limit. Clients that signed in are kept in `example_known_clients`.
 */
export class PostgresLoginLimiter implements LoginLimiter {
  constructor (readonly pool: pg.Pool, readonly windowMs: number, readonly now: () => number = Date.now) {}

  take (key: string, max: number): Promise<{ taken: boolean, retryAfterMs: number }> {
    return unavailableOnError(async () => {
      const now = this.now()
      const { rows } = await this.pool.query(`INSERT INTO example_login_attempts AS a (key, count, reset_at) VALUES ($1, 1, $2::bigint + $3::bigint)
ON CONFLICT (key) DO UPDATE SET
  count = CASE WHEN a.reset_at <= $2 THEN 1 ELSE a.count + 1 END,
  reset_at = CASE WHEN a.reset_at <= $2 THEN $2::bigint + $3::bigint ELSE a.reset_at END
WHERE a.reset_at <= $2 OR a.count < $4
RETURNING reset_at`, [key, now, this.windowMs, max])
      if (rows.length === 1) return { taken: true, retryAfterMs: Number(rows[0].reset_at) - now }
      // Refused: the window's end, for Retry-After.
      const window = await this.pool.query('SELECT reset_at FROM example_login_attempts WHERE key = $1', [key])
      const resetAt = window.rows.length === 1 ? Number(window.rows[0].reset_at) : now + this.windowMs
      return { taken: false, retryAfterMs: Math.max(1, resetAt - now) }
    })
  }

  giveBack (key: string): Promise<void> {
    return unavailableOnError(async () => { await this.pool.query('UPDATE example_login_attempts SET count = count - 1 WHERE key = $1 AND count > 0', [key]) })
  }

  remember (key: string, ttlMs: number): Promise<void> {
    return unavailableOnError(async () => {
      await this.pool.query('INSERT INTO example_known_clients (key, until) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET until = excluded.until', [key, this.now() + ttlMs])
    })
  }

  isRemembered (key: string): Promise<boolean> {
    return unavailableOnError(async () => (await this.pool.query('SELECT 1 FROM example_known_clients WHERE key = $1 AND until > $2', [key, this.now()])).rows.length === 1)
  }
}

/**
 * Every store in PostgreSQL through one pool, ended with the app. The package's stores
 * create their tables when the app is ready; the example's own are created then too.
 * The refresh-token store reads the token versions in its own statements (same
 * database, same table prefix): a login and a refresh are one round trip each.
 */
export async function selectPostgresStores (app: FastifyInstance, url: string, now: () => number = Date.now): Promise<SelectedStores> {
  const pool = createPool(url, app.log)
  app.addHook('onReady', async function createExampleTables () {
    await pool.query(`SELECT pg_advisory_xact_lock(hashtext('fastify-revocable-jwt example schema'));${EXAMPLE_SCHEMA}`)
  })
  const revocationStore = new PostgresRevocationStore({ pool, now })
  const refreshTokenStore = new PostgresRefreshTokenStore({ pool, now, tokenVersionsOf: revocationStore })
  return {
    revocationStore,
    refreshTokenStore,
    users: new PostgresUserRegistry(pool),
    loginLimiter: new PostgresLoginLimiter(pool, LOGIN_FAILURE_WINDOW_MS, now),
    close: async () => {
      // Given to the plugin, the stores are the app's to close: their sweepers stop here.
      await Promise.all([revocationStore.close(), refreshTokenStore.close()])
      await pool.end()
    }
  }
}
