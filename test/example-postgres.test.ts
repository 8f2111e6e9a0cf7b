// The example server's whole HTTP contract (example.test.ts, pages.test.ts) with DATABASE_URL: every
// store in a private PostgreSQL, each app in a database of its own, so that the
// contract's fixed email addresses never meet. Then what only PostgreSQL can show.
import t from 'tap'
import pg from 'pg'
import { PostgresRefreshTokenStore, PostgresRevocationStore } from '../lib/stores/postgres.js'
import { PostgresLoginLimiter, PostgresUserRegistry } from '../example/postgres.js'
import { build as buildApi } from '../example/api/app.js'
import { PostgresServer } from './postgres-server.js'
import { bearer, build, registerAndLogin, setStoreEnv } from './helper.js'

const server = await PostgresServer.start()
t.teardown(() => server.close())
let databases = 0
const freshDatabase = (): Promise<string> => server.createDatabase(`example_${++databases}`)

t.test('with DATABASE_URL every store of the example is in PostgreSQL', async (t) => {
  const url = await freshDatabase()
  const app = await build({ env: { DATABASE_URL: url } })
  t.teardown(() => app.close())
  t.ok(app.revocableJwt.revocationStore instanceof PostgresRevocationStore)
  t.ok(app.revocableJwt.refreshTokenStore instanceof PostgresRefreshTokenStore)
  t.equal((app.revocableJwt.refreshTokenStore as PostgresRefreshTokenStore).readsTokenVersions, true, 'a login and a refresh are one round trip')
  const session = await registerAndLogin(app)
  t.equal((await app.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode, 200)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  const { rows } = await client.query(`SELECT (SELECT count(*)::int FROM example_users) AS users, (SELECT count(*)::int FROM rjwt_sessions) AS sessions,
    (SELECT count(*)::int FROM rjwt_refresh_tokens) AS tokens`)
  t.same(rows, [{ users: 1, sessions: 1, tokens: 1 }])
})

t.test('selectStores with DATABASE_URL keeps the users and the login limiter in PostgreSQL too', async (t) => {
  const { selectStores } = await import('../example/stores.js')
  const fastify = (await import('fastify')).default()
  t.teardown(() => fastify.close())
  const selected = await selectStores(fastify, { DATABASE_URL: 'postgres://127.0.0.1:1/none' })
  t.ok(selected.users instanceof PostgresUserRegistry)
  t.ok(selected.loginLimiter instanceof PostgresLoginLimiter)
  await selected.close?.()
})

t.test('an example whose database cannot be reached does not start, naming the cause', async (t) => {
  const app = await build({ env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' } }).catch((err: Error) => err)
  t.type(app, Error)
  t.match((app as Error).message, /ECONNREFUSED 127\.0\.0\.1:1/)
})

t.test('the resource server with DATABASE_URL enforces a logout on the auth service at once', async (t) => {
  const url = await freshDatabase()
  const auth = await build({ env: { DATABASE_URL: url, JWT_ALGORITHM: 'EdDSA', COOKIE_SECURE: 'false' } })
  t.teardown(() => auth.close())
  const authUrl = await auth.listen({ port: 0, host: '127.0.0.1' })
  const api = await buildApi({ env: { AUTH_URL: authUrl, DATABASE_URL: url } })
  t.teardown(() => api.close())
  await api.ready()
  t.ok(api.revocableJwt.revocationStore instanceof PostgresRevocationStore)
  const session = await registerAndLogin(auth)
  const me = await api.inject({ url: '/me', headers: bearer(session.accessToken) })
  t.same([me.statusCode, me.json()], [200, { id: session.userId }])
  const logout = await auth.inject({ method: 'POST', url: '/auth/logout', headers: bearer(session.accessToken), cookies: { refresh_token: session.refreshToken } })
  t.equal(logout.statusCode, 204)
  const after = await api.inject({ url: '/me', headers: bearer(session.accessToken) })
  t.same([after.statusCode, after.json().code], [401, 'TOKEN_REVOKED'])
})

t.test('the example contract on PostgreSQL', async () => {
  setStoreEnv(async () => ({ DATABASE_URL: await freshDatabase() }))
  t.teardown(() => setStoreEnv(async () => ({})))
  await import('./example.test.js')
  // The server-rendered pages too: ten concurrent silent refreshes of one cookie, twenty
  // rounds, race the rotation statement through the app (no fork, no reuse alarm).
  await import('./pages.test.js')
})

t.test('the PostgreSQL login limiter: concurrent takes never pass the limit, a give-back frees one, known clients are remembered', async (t) => {
  const url = await freshDatabase()
  const pool = new pg.Pool({ connectionString: url })
  t.teardown(() => pool.end())
  const { EXAMPLE_SCHEMA } = await import('../example/postgres.js')
  await pool.query(EXAMPLE_SCHEMA)
  let now = 1_000_000
  const limiter = new PostgresLoginLimiter(pool, 60_000, () => now)
  const takes = await Promise.all(Array.from({ length: 12 }, async () => await limiter.take('a|1.2.3.4', 5)))
  t.equal(takes.filter(take => take.taken).length, 5, 'five of twelve concurrent attempts taken')
  const refused = takes.find(take => !take.taken)
  t.ok(refused !== undefined && refused.retryAfterMs > 0 && refused.retryAfterMs <= 60_000, 'a refusal says when the window ends')
  await limiter.giveBack('a|1.2.3.4')
  t.equal((await limiter.take('a|1.2.3.4', 5)).taken, true, 'a given-back attempt can be taken again')
  t.equal((await limiter.take('a|1.2.3.4', 5)).taken, false)
  t.equal((await limiter.take('b|1.2.3.4', 5)).taken, true, 'another key has its own count')
  now += 60_000
  t.equal((await limiter.take('a|1.2.3.4', 5)).taken, true, 'a new window starts when the old one has ended')
  t.equal(await limiter.isRemembered('known|a'), false)
  await limiter.remember('known|a', 1000)
  t.equal(await limiter.isRemembered('known|a'), true)
  now += 1000
  t.equal(await limiter.isRemembered('known|a'), false, 'forgotten after its time')
})
