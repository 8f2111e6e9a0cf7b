// The PostgreSQL stores against a private PostgreSQL server started here: the store
// contract, rotation races, the schema, expiry sweeps and the round trips per call.
import t from 'tap'
import { once } from 'node:events'
import pg from 'pg'
import {
  PostgresRefreshTokenStore,
  PostgresRevocationStore,
  postgresSchema,
  type PostgresQueryable
} from '../../lib/stores/postgres.js'
import { makeSession, randomKey, refreshTokenStoreContract, revocationStoreContract, rotation, type ContractClock } from '../../lib/testing/contract.js'
import { PostgresServer } from '../postgres-server.js'
import { declareWith } from './tap-contract.js'

const MINUTE = 60_000
const DAY = 86_400_000

const server = await PostgresServer.start()
t.teardown(() => server.close())
const pool = new pg.Pool({ connectionString: server.url, max: 25 })
t.teardown(() => pool.end())

/** A fresh table prefix per fixture: every case starts with empty tables. */
function freshPrefix (): string {
  return `t${randomKey().toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12)}_`
}

/** Expiry is judged by the store's clock: the contract moves it instead of waiting. */
function fakeClock (): ContractClock {
  let now = Date.now()
  return { now: () => now, advance: async (ms) => { now += ms } }
}

/** The pool, counting the queries sent through it. */
function counting (inner: PostgresQueryable = pool): PostgresQueryable & { count: number, texts: string[] } {
  const counter = {
    count: 0,
    texts: [] as string[],
    query (text: string, values?: unknown[]) {
      counter.count++
      counter.texts.push(text)
      return inner.query(text, values)
    }
  }
  return counter
}

t.test('PostgresRevocationStore passes the store contract', async (t) => {
  revocationStoreContract(declareWith(t), async () => {
    const clock = fakeClock()
    const store = new PostgresRevocationStore({ pool, tablePrefix: freshPrefix(), now: clock.now })
    await store.init()
    return { store, clock, close: () => store.close() }
  })
})

t.test('PostgresRefreshTokenStore passes the store contract', async (t) => {
  refreshTokenStoreContract(declareWith(t), async () => {
    const clock = fakeClock()
    const store = new PostgresRefreshTokenStore({ pool, tablePrefix: freshPrefix(), now: clock.now })
    await store.init()
    return { store, clock, close: () => store.close() }
  })
})

t.test('twenty concurrent rotations of one token on separate connections: one winner, one child, every loser told the same', async (t) => {
  const store = new PostgresRefreshTokenStore({ pool, tablePrefix: freshPrefix() })
  await store.init()
  t.teardown(() => store.close())
  for (let round = 0; round < 5; round++) {
    const now = Date.now()
    const session = makeSession(now)
    await store.create({ session, tokenHash: 'parent', now, maxSessions: 10 })
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => store.rotate(rotation(session, 'parent', `child-${i}`, now + 1))))
    const winners = results.filter(r => r?.rotated === true)
    t.equal(winners.length, 1, `round ${round}: exactly one rotation wins`)
    const child = winners[0]?.liveHash as string
    for (const result of results) {
      t.equal(result?.liveHash, child, 'every caller sees the winner\'s child as live')
      if (result?.rotated === false) t.same([result.rotatedAt, result.childHash], [now + 1, child], 'a loser sees the rotation the winner made')
    }
    const { rows } = await pool.query(`SELECT hash, gen, child_hash FROM ${store.tableNames.tokens} WHERE session_id = $1 ORDER BY gen`, [session.sessionId])
    t.same(rows, [{ hash: 'parent', gen: 0, child_hash: child }, { hash: child, gen: 1, child_hash: null }], 'no fork: one parent, one child')
  }
})

t.test('a rotation, a check and a login with the versions read in are each one round trip', async (t) => {
  const tablePrefix = freshPrefix()
  const counted = counting()
  const revocation = new PostgresRevocationStore({ pool: counted, tablePrefix })
  const store = new PostgresRefreshTokenStore({ pool: counted, tablePrefix, tokenVersionsOf: revocation })
  await revocation.init()
  await store.init()
  t.teardown(async () => { await store.close(); await revocation.close() })
  const now = Date.now()
  const session = makeSession(now)
  await revocation.bumpTokenVersion(session.userId)
  counted.count = 0
  t.same(await store.create({ session, tokenHash: 'a', now, maxSessions: 5, versionFromStore: true }), { evicted: [], version: 1 })
  t.equal((await store.rotate(rotation(session, 'a', 'b', now)))?.currentVersion, 1)
  t.same(await revocation.check(session.userId, 'jti', session.sessionId), { tokenRevoked: false, sessionRevoked: false, version: 1 })
  t.equal((await store.rotate(rotation(session, 'a', 'b', now)))?.rotated, false, 'a rotated token presented again')
  t.equal(counted.count, 4, 'four calls, four queries')
})

t.test('init() creates the tables once, also when several stores boot at once, and the exported SQL is the same schema', async (t) => {
  const tablePrefix = freshPrefix()
  const stores = Array.from({ length: 6 }, (_, i) => i % 2 === 0
    ? new PostgresRevocationStore({ pool, tablePrefix })
    : new PostgresRefreshTokenStore({ pool, tablePrefix }))
  await Promise.all(stores.map(store => store.init()))
  await Promise.all(stores.map(store => store.init()))
  t.teardown(() => Promise.all(stores.map(store => store.close())))
  const tables = async (prefix: string): Promise<unknown[]> => (await pool.query(`SELECT c.relname, c.relkind FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname LIKE $1 ORDER BY c.relname`, [`${prefix}%`])).rows
  const created = await tables(tablePrefix)
  t.same(created.map(row => (row as { relname: string }).relname.slice(tablePrefix.length)), [
    'refresh_tokens', 'refresh_tokens_pkey', 'refresh_tokens_session_id_gen_key',
    'revoked', 'revoked_expires_at', 'revoked_pkey',
    'sessions', 'sessions_expires_at', 'sessions_pkey', 'sessions_user_id_last_used_at',
    'token_versions', 'token_versions_pkey'
  ])
  const other = freshPrefix()
  await pool.query(postgresSchema(other))
  await pool.query(postgresSchema(other))
  t.same((await tables(other)).length, created.length, 'postgresSchema() creates the same tables and indexes, idempotently')
  t.throws(() => postgresSchema('Bad-Prefix'), { message: /^postgresSchema: tablePrefix must be lower-case letters/ })
})

t.test('with createTables: false, init() creates nothing and names the tables that are missing', async (t) => {
  const tablePrefix = freshPrefix()
  const store = new PostgresRevocationStore({ pool, tablePrefix, createTables: false })
  t.teardown(() => store.close())
  await t.rejects(store.init(), { message: `PostgresRevocationStore: missing tables ${tablePrefix}revoked, ${tablePrefix}token_versions: run postgresSchema() from your migrations, or leave createTables on` })
  await t.rejects(store.check('u', 'j', 's'), { code: '42P01' }, 'undefined_table: the guard turns it into a 503')
  await pool.query(postgresSchema(tablePrefix))
  await store.init()
  t.same(await store.check('u', 'j', 's'), { tokenRevoked: false, sessionRevoked: false, version: 0 }, 'the tables made by the migration are used')
})

t.test('init() on a server that cannot be reached names the store and keeps the driver\'s error', async (t) => {
  const nowhere = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none' })
  t.teardown(() => nowhere.end())
  const store = new PostgresRefreshTokenStore({ pool: nowhere })
  const err = await store.init().then(() => null, (err: Error) => err)
  t.match(err?.message, /^PostgresRefreshTokenStore: cannot prepare its tables: connect ECONNREFUSED 127\.0\.0\.1:1$/)
  t.match(err?.cause, { code: 'ECONNREFUSED' })
})

t.test('every lookup the stores make uses an index', async (t) => {
  const tablePrefix = freshPrefix()
  const revocation = new PostgresRevocationStore({ pool, tablePrefix })
  const store = new PostgresRefreshTokenStore({ pool, tablePrefix, tokenVersionsOf: revocation })
  await revocation.init()
  await store.init()
  t.teardown(async () => { await store.close(); await revocation.close() })
  const client = await pool.connect()
  t.teardown(() => client.release())
  // Sequential scans off: with tiny tables the planner would rightly prefer them, and
  // the question here is whether an index *can* answer each statement.
  await client.query('SET enable_seqscan = off')
  const plans: string[] = []
  const explaining: PostgresQueryable = {
    async query (text, values) {
      if (values !== undefined && !/^\s*(INSERT|WITH gone)/.test(text)) {
        const { rows } = await client.query(`EXPLAIN ${text}`, values)
        plans.push(rows.map(row => row['QUERY PLAN']).join('\n'))
      }
      return await client.query(text, values)
    }
  }
  const explainedRevocation = new PostgresRevocationStore({ pool: explaining, tablePrefix })
  const explained = new PostgresRefreshTokenStore({ pool: explaining, tablePrefix, tokenVersionsOf: explainedRevocation })
  const now = Date.now()
  const session = makeSession(now)
  await explained.create({ session, tokenHash: 'a', now, maxSessions: 5 })
  await explained.find(session.userId, session.sessionId, 'a', now)
  await explained.rotate(rotation(session, 'a', 'b', now))
  await explained.listSessions(session.userId, now)
  await explainedRevocation.check(session.userId, 'j', session.sessionId)
  await explainedRevocation.getTokenVersion(session.userId)
  await explained.deleteSession(session.userId, session.sessionId)
  await explained.deleteUser(session.userId)
  t.equal(plans.length, 8)
  for (const plan of plans) t.notMatch(plan, /Seq Scan/, plan)
})

t.test('expired rows are ignored at once and swept in bounded batches', async (t) => {
  const clock = fakeClock()
  const tablePrefix = freshPrefix()
  const revocation = new PostgresRevocationStore({ pool, tablePrefix, now: clock.now, sweepBatchSize: 3, sweepInterval: 0 })
  const store = new PostgresRefreshTokenStore({ pool, tablePrefix, now: clock.now, sweepBatchSize: 3, sweepInterval: 0 })
  await revocation.init()
  await store.init()
  t.teardown(async () => { await store.close(); await revocation.close() })
  const now = clock.now()
  for (let i = 0; i < 40; i++) await revocation.revokeToken('u', `jti-${i}`, now + MINUTE)
  await revocation.revokeSession('u', 'sid-long', now + DAY)
  const short = makeSession(now, { expiresAt: now + MINUTE })
  await store.create({ session: short, tokenHash: 'short', now, maxSessions: 5 })
  await store.rotate(rotation(short, 'short', 'short-child', now, { childExpiresAt: now + MINUTE }))
  const long = makeSession(now)
  await store.create({ session: long, tokenHash: 'long', now, maxSessions: 5 })
  await clock.advance(MINUTE)

  t.same(await revocation.check('u', 'jti-1', 'sid-long'), { tokenRevoked: false, sessionRevoked: true, version: 0 }, 'expired before any sweep')
  t.equal(await store.find(short.userId, short.sessionId, 'short-child', clock.now()), null)
  const count = async (table: string): Promise<number> => Number((await pool.query(`SELECT count(*) AS n FROM ${tablePrefix}${table}`)).rows[0].n)
  t.equal(await count('revoked'), 41, 'still stored')

  t.equal(await revocation.sweep(), 30, 'one sweep deletes at most 10 batches of 3')
  t.equal(await revocation.sweep(), 10)
  t.equal(await revocation.sweep(), 0)
  t.equal(await count('revoked'), 1, 'the live revocation stays')
  t.equal(await store.sweep(), 1)
  t.equal(await count('sessions'), 1)
  t.equal(await count('refresh_tokens'), 1, 'the expired session\'s tokens went with it')
})

t.test('the sweeper runs on its interval once init() ran, and close() stops it', async (t) => {
  const tablePrefix = freshPrefix()
  let swept = 0
  let resolveSwept: () => void = () => {}
  const twice = new Promise<void>(resolve => { resolveSwept = resolve })
  const watching: PostgresQueryable = {
    async query (text, values) {
      const result = await pool.query(text, values)
      if (text.includes('WITH gone') && ++swept === 2) resolveSwept()
      return result
    }
  }
  const store = new PostgresRevocationStore({ pool: watching, tablePrefix, sweepInterval: 10 })
  await store.init()
  await twice
  await store.close()
  const after = swept
  // A closed store's timer is gone: a later tick would have swept again by now.
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(swept, after, 'no sweep after close()')
})

t.test('the user-agent and ip of a session may be absent, and user ids are kept apart exactly', async (t) => {
  const store = new PostgresRefreshTokenStore({ pool, tablePrefix: freshPrefix() })
  await store.init()
  t.teardown(() => store.close())
  const now = Date.now()
  const session = makeSession(now, { userId: 'a\'; DROP TABLE x; --', userAgent: null, ip: null })
  await store.create({ session, tokenHash: 'h', now, maxSessions: 2 })
  t.same(await store.listSessions(session.userId, now), [session])
  t.same(await store.listSessions('a', now), [])
})

t.test('on node-postgres the statements are named prepared statements, parsed once per connection', async (t) => {
  const client = new pg.Client({ connectionString: server.url })
  await client.connect()
  t.teardown(() => client.end())
  const tablePrefix = freshPrefix()
  const store = new PostgresRevocationStore({ pool: client, tablePrefix })
  await store.init()
  t.teardown(() => store.close())
  await store.check('u', 'j', 's')
  await store.check('u', 'j', 's')
  await store.bumpTokenVersion('u')
  const { rows } = await client.query("SELECT statement FROM pg_prepared_statements WHERE name LIKE 'rjwt\\_%' ORDER BY statement")
  t.equal(rows.length, 2, 'the check, prepared once, and the bump')
  t.match(rows.map(row => row.statement).join('\n'), new RegExp(`FROM ${tablePrefix}revoked`))
  const unprepared = new PostgresRevocationStore({ pool: client, tablePrefix, preparedStatements: false })
  await unprepared.getTokenVersion('u')
  t.equal((await client.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'rjwt\\_%'")).rows[0].n, 2, 'preparedStatements: false prepares nothing')
})

t.test('store options are validated with messages that name the option', async (t) => {
  t.throws(() => new PostgresRevocationStore({} as never), { message: 'PostgresRevocationStore: pool must be a pg Pool (or an object with query(text, values))' })
  t.throws(() => new PostgresRefreshTokenStore({ pool, tablePrefix: 'x"; --' }), { message: /^PostgresRefreshTokenStore: tablePrefix must be lower-case letters/ })
  t.throws(() => new PostgresRefreshTokenStore({ pool, tablePrefix: 'a'.repeat(31) }), { message: /at most 30 characters/ })
  t.throws(() => new PostgresRevocationStore({ pool, sweepInterval: -1 }), { message: 'PostgresRevocationStore: sweepInterval must be a non-negative integer number of ms' })
  t.throws(() => new PostgresRevocationStore({ pool, sweepBatchSize: 0 }), { message: 'PostgresRevocationStore: sweepBatchSize must be a positive integer' })
  t.throws(() => new PostgresRevocationStore({ pool, createTables: 'yes' as never }), { message: 'PostgresRevocationStore: createTables must be a boolean' })
  t.throws(() => new PostgresRevocationStore({ pool, now: 5 as never }), { message: 'PostgresRevocationStore: now must be a function' })
  t.throws(() => new PostgresRevocationStore({ pool, preparedStatements: 'yes' as never }), { message: 'PostgresRevocationStore: preparedStatements must be a boolean' })
  const elsewhere = new PostgresRevocationStore({ pool, tablePrefix: 'other_' })
  t.throws(() => new PostgresRefreshTokenStore({ pool, tokenVersionsOf: elsewhere }), { message: 'PostgresRefreshTokenStore: tokenVersionsOf must be a PostgresRevocationStore on the same pool and tablePrefix' })
  t.throws(() => new PostgresRefreshTokenStore({ pool, tokenVersionsOf: {} as never }), { message: 'PostgresRefreshTokenStore: tokenVersionsOf must be a PostgresRevocationStore on the same pool and tablePrefix' })
  t.equal(new PostgresRefreshTokenStore({ pool }).readsTokenVersions, false)
})

t.test('a server that is down fails each call at once with the driver\'s error, and the store serves again when it is back', async (t) => {
  const own = await PostgresServer.start()
  t.teardown(() => own.close())
  const ownPool = new pg.Pool({ connectionString: own.url })
  t.teardown(() => ownPool.end())
  const store = new PostgresRevocationStore({ pool: ownPool })
  await store.init()
  t.teardown(() => store.close())
  await store.revokeToken('u', 'j', Date.now() + MINUTE)
  // The idle connection's server process ends after the postmaster: wait until it has.
  const lost = once(ownPool, 'error')
  await own.stop('SIGKILL')
  await lost
  await t.rejects(store.check('u', 'j', 's'), { code: 'ECONNREFUSED' })
  await own.restart()
  t.same(await store.check('u', 'j', 's'), { tokenRevoked: true, sessionRevoked: false, version: 0 }, 'the revocation survived')
})
