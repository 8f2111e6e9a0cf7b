// The private PostgreSQL server the store tests will use: reachable with pg, its
// data survives a crash and a restart on the same port, and a query while it is
// down fails fast instead of hanging.
import t from 'tap'
import pg from 'pg'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PostgresServer, findBinDir } from './postgres-server.js'

const server = await PostgresServer.start()
t.teardown(() => server.close())

t.test('the server listens on its own port on 127.0.0.1, with fsync off, and trusts the postgres user', async (t) => {
  t.not(server.port, 5432)
  t.equal(server.url, `postgres://postgres@127.0.0.1:${server.port}/postgres`)
  const client = new pg.Client({ connectionString: server.url })
  await client.connect()
  t.teardown(() => client.end())
  const { rows } = await client.query(`SELECT current_user AS user, host(inet_server_addr()) AS address, inet_server_port() AS port,
    current_setting('listen_addresses') AS listen, current_setting('data_directory') AS data,
    current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit`)
  t.same(rows, [{
    user: 'postgres',
    address: '127.0.0.1',
    port: server.port,
    listen: '127.0.0.1',
    data: join(server.dir, 'data'),
    fsync: 'off',
    synchronous_commit: 'on'
  }])
})

t.test('a row written before a SIGKILL is still there after a restart on the same port; while down, queries fail fast', async (t) => {
  const pool = new pg.Pool({ connectionString: server.url, connectionTimeoutMillis: 1000 })
  t.teardown(() => pool.end())
  await pool.query('CREATE TABLE revoked (jti text PRIMARY KEY, until bigint NOT NULL)')
  await pool.query('INSERT INTO revoked (jti, until) VALUES ($1, $2)', ['first', 1000])
  t.same((await pool.query('SELECT jti, until FROM revoked')).rows, [{ jti: 'first', until: '1000' }])

  // The pooled connection is idle; its server process ends when the server dies,
  // and the pool reports that as an error event (an unhandled one would crash).
  const reported = once(pool, 'error', { signal: AbortSignal.timeout(5000) })
  const port = server.port
  await server.stop('SIGKILL')
  t.equal(server.running, false)
  const [idleError] = await reported
  t.match(idleError, { message: /terminating connection due to unexpected postmaster exit/ })

  const started = performance.now()
  await t.rejects(pool.query('SELECT jti FROM revoked'), { code: 'ECONNREFUSED' })
  t.ok(performance.now() - started < 1000, 'the failed query did not wait for a timeout')

  await server.restart()
  t.equal(server.running, true)
  t.equal(server.port, port)
  t.same((await pool.query('SELECT jti, until FROM revoked')).rows, [{ jti: 'first', until: '1000' }])
  await pool.query('INSERT INTO revoked (jti, until) VALUES ($1, $2)', ['second', 2000])
  t.same((await pool.query('SELECT jti FROM revoked ORDER BY until')).rows.map(row => row.jti), ['first', 'second'])
})

t.test('restart refuses while the server runs', async (t) => {
  await t.rejects(server.restart(), { message: 'postgres is already running' })
})

t.test('createDatabase returns the URL of a new, empty database', async (t) => {
  const url = await server.createDatabase('store-test')
  t.equal(url, `postgres://postgres@127.0.0.1:${server.port}/store-test`)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  const { rows } = await client.query("SELECT current_database() AS name, (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public') AS tables")
  t.same(rows, [{ name: 'store-test', tables: 0 }])
})

t.test('a second server gets its own port and directory, and close removes the directory', async (t) => {
  const other = await PostgresServer.start()
  t.not(other.port, server.port)
  t.not(other.dir, server.dir)
  const client = new pg.Client({ connectionString: other.url })
  await client.connect()
  const { rows } = await client.query("SELECT to_regclass('revoked') IS NULL AS empty")
  await client.end()
  t.same(rows, [{ empty: true }], 'it does not share the first server\'s data')
  await other.close()
  t.equal(other.running, false)
  t.equal(existsSync(other.dir), false)
})

t.test('the binaries are found through PG_BIN, an initdb linked on PATH, or not at all with one clear line', async (t) => {
  const bin = await findBinDir()
  const empty = await mkdtemp(join(tmpdir(), 'rjwt-pg-bin-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))

  t.equal(await findBinDir({ PG_BIN: bin, PATH: empty }, empty), bin)
  await t.rejects(findBinDir({ PG_BIN: empty, PATH: empty }, empty), {
    message: `PostgreSQL server binaries not found in PG_BIN=${empty} (apt-get install postgresql, or set PG_BIN to their directory)`
  })
  await t.rejects(findBinDir({ PATH: empty }, empty), {
    message: 'PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN to their directory)'
  })

  const nowhere = join(empty, 'nowhere')
  await symlink(join(bin, 'initdb'), join(empty, 'initdb'))
  t.equal(await findBinDir({ PATH: `${nowhere}:${empty}` }, nowhere), bin)
})
