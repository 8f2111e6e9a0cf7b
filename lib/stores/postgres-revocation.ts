import type { RevocationState, RevocationStore } from './types.js'
import { postgresRevocationSchema, sweepTable, type PostgresStoreOptions } from './postgres-schema.js'
import { PostgresStore } from './postgres-store.js'

/**
 * Revocation store in PostgreSQL. Revoked token and session ids live in
 * `<prefix>revoked` until the tokens they revoke would expire; versions in
 * `<prefix>token_versions`. `check()` is one `SELECT` of three index lookups.
 */
export class PostgresRevocationStore extends PostgresStore implements RevocationStore {
  readonly #sql: { check: string, revoke: string, get: string, bump: string }

  constructor (options: PostgresStoreOptions) {
    super(options, 'PostgresRevocationStore')
    const { revoked, versions } = this.tableNames
    this.#sql = {
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
    return await sweepTable(this.pool, this.tableNames.revoked, this.options.now(), this.options.sweepBatchSize)
  }
}
