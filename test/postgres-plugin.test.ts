// The `postgres` plugin option on a private PostgreSQL: the plugins build both stores on
// the app's pool, a login and a refresh read the versions in their own statement, and
// a bad option stops the boot with a message naming it.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { generateKeyPairSync } from 'node:crypto'
import pg from 'pg'
import revocableJwt, { revocableJwtResourceServer, MemoryRevocationStore, type RevocableJwtOptions } from '../lib/index.js'
import { PostgresRefreshTokenStore, PostgresRevocationStore, type PostgresQueryable } from '../lib/stores/postgres.js'
import { PostgresServer } from './postgres-server.js'
import { TEST_SECRET, bearer } from './helper.js'

const server = await PostgresServer.start()
t.teardown(() => server.close())
const pool = new pg.Pool({ connectionString: await server.createDatabase('plugin') })
t.teardown(() => pool.end())

/** The pool, counting the statements sent through it. */
const counted = { count: 0, query: (text: string, values?: unknown[]) => { counted.count++; return pool.query(text, values) } }

async function buildApp (options: Partial<RevocableJwtOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, cookie: { secure: false }, ...options })
  app.post<{ Querystring: { user: string } }>('/login', async function login (request, reply) {
    return reply.issueTokens({ id: request.query.user })
  })
  app.get('/me', { onRequest: app.revocableJwt.authenticate }, async function me (request) {
    return { id: request.auth?.userId }
  })
  await app.ready()
  return app
}

function refreshCookieOf (res: { cookies: Array<{ name: string, value: string }> }): string {
  return res.cookies.find(c => c.name === 'refresh_token')?.value as string
}

t.test('postgres: { pool } keeps both stores in PostgreSQL; login, refresh and a protected request are one statement each', async (t) => {
  const app = await buildApp({ postgres: { pool: counted, tablePrefix: 'plugin_' } })
  t.teardown(() => app.close())
  const { revocationStore, refreshTokenStore } = app.revocableJwt
  t.ok(revocationStore instanceof PostgresRevocationStore)
  t.ok(refreshTokenStore instanceof PostgresRefreshTokenStore)
  t.equal((refreshTokenStore as PostgresRefreshTokenStore).tokenVersionsOf, revocationStore, 'the refresh store reads the revocation store\'s versions')

  counted.count = 0
  const login = await app.inject({ method: 'POST', url: '/login?user=ada' })
  t.equal(login.statusCode, 200)
  t.equal(counted.count, 1, 'a login: one statement (create, versions read in)')
  counted.count = 0
  const me = await app.inject({ url: '/me', headers: bearer(login.json().accessToken) })
  t.same([me.statusCode, me.json()], [200, { id: 'ada' }])
  t.equal(counted.count, 1, 'a protected request: one statement')
  counted.count = 0
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookieOf(login) } })
  t.equal(refreshed.statusCode, 200)
  t.equal(counted.count, 1, 'a refresh: one statement (rotate, versions read in)')

  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(refreshed.json().accessToken), cookies: { refresh_token: refreshCookieOf(refreshed) } })
  t.equal(logout.statusCode, 204)
  const after = await app.inject({ url: '/me', headers: bearer(refreshed.json().accessToken) })
  t.same([after.statusCode, after.json().code], [401, 'TOKEN_REVOKED'])
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM plugin_sessions')
  t.equal(rows[0].n, 0, 'the session row is gone')
})

t.test('with a revocation store of its own, the plugin\'s PostgreSQL refresh store reads the versions from that one', async (t) => {
  const app = await buildApp({ postgres: { pool, tablePrefix: 'mixed_' }, revocationStore: new MemoryRevocationStore() })
  t.teardown(() => app.close())
  t.equal((app.revocableJwt.refreshTokenStore as PostgresRefreshTokenStore).tokenVersionsOf, undefined)
  const login = await app.inject({ method: 'POST', url: '/login?user=bob' })
  t.equal((await app.inject({ url: '/me', headers: bearer(login.json().accessToken) })).statusCode, 200)
})

t.test('the resource server checks revocation in PostgreSQL with postgres: { pool }', async (t) => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const api = Fastify()
  t.teardown(() => api.close())
  await api.register(revocableJwtResourceServer, { algorithm: 'ES256', keys: [{ publicKey: publicKey.export({ type: 'spki', format: 'pem' }) as string }], postgres: { pool, tablePrefix: 'shared_', sweepInterval: 0 } })
  await api.ready()
  t.ok(api.revocableJwt.revocationStore instanceof PostgresRevocationStore)
  t.equal((await pool.query("SELECT to_regclass('shared_revoked') IS NOT NULL AS made")).rows[0].made, true, 'its tables were created when it was ready')
})

t.test('the plugins stop their sweepers with the app and leave the pool to it', async (t) => {
  const app = await buildApp({ postgres: { pool, tablePrefix: 'closing_', sweepInterval: 5 } })
  await app.close()
  t.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the app\'s pool still works')
})

const notAPool: PostgresQueryable = { query: 'no' } as never
for (const [name, options, message] of [
  ['a missing pool', { postgres: {} }, 'postgres.pool must be a pg Pool (or an object with query(text, values))'],
  ['something else as the pool', { postgres: { pool: notAPool } }, 'postgres.pool must be a pg Pool (or an object with query(text, values))'],
  ['a misspelt postgres option', { postgres: { pool, tablePrefx: 'x_' } }, /^postgres: unknown option "tablePrefx" \(did you mean "tablePrefix"\?\); known options: pool, tablePrefix, createTables, sweepInterval$/],
  ['a misspelt postgres', { postgress: { pool } }, /^fastify-revocable-jwt: unknown option "postgress" \(did you mean "postgres"\?\)/],
  ['redis and postgres', { redis: 'redis://127.0.0.1:1', postgres: { pool } }, 'give redis or postgres, not both: the stores live in one of them'],
  ['a bad table prefix', { postgres: { pool, tablePrefix: 'Bad' } }, /^PostgresRevocationStore: tablePrefix must be lower-case letters/],
  ['a bad sweep interval', { postgres: { pool, sweepInterval: -5 } }, 'PostgresRevocationStore: sweepInterval must be a non-negative integer number of ms']
] as const) {
  t.test(`ready() rejects ${name}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(revocableJwt, { secret: TEST_SECRET, ...options } as never)
    await t.rejects(async () => { await app.ready() }, { message })
  })
}

t.test('missing tables with createTables: false stop the boot, naming them', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(revocableJwt, { secret: TEST_SECRET, postgres: { pool, tablePrefix: 'absent_', createTables: false } })
  await t.rejects(async () => { await app.ready() }, { message: /^PostgresRevocationStore: missing tables absent_revoked, absent_token_versions: run postgresSchema\(\)/ })
})
