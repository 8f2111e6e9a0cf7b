import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'

/** How long the example waits for a connection before the request is refused. */
const CONNECT_TIMEOUT_MS = 2000

/**
 * A pool for the example's services. Its `error` listener matters: node-postgres emits
 * the loss of an idle connection (the server restarting) there, and an unheard `error`
 * event would end the process; requests meanwhile get their 503.
 */
export function createPool (url: string, log: FastifyBaseLogger): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, max: 10 })
  pool.on('error', function onPostgresError (err: Error) {
    log.warn({ err }, 'PostgreSQL connection error')
  })
  return pool
}
