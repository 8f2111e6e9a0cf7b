import { randomBytes } from 'node:crypto'
import t from 'tap'
import { MongoClient, type Db } from 'mongodb'
import { MONGO_INDEXES, MongoRefreshTokenStore, type MongoRefreshTokenStoreOptions } from '../../lib/stores/mongodb.js'
import { makeSession, refreshTokenStoreContract, rotation, type ContractClock } from '../../lib/testing/contract.js'
import { MingoDb } from './mingo-db.js'
import { declareWith } from './tap-contract.js'

// Three kinds of tests live here.
//
// 1. The integration suite: the store contract and a few server-side checks, run against
//    a real MongoDB when MONGODB_URL is set. Without it the suite is reported as skipped,
//    never as passed. No MongoDB server can be installed where CI runs, so this suite has
//    not run there.
// 2. The same contract against MingoDb (test/stores/mingo-db.ts): the driver's collection
//    API answered with mingo's implementation of MongoDB's query and update language.
//    It checks the store's queries, projections and updates do what the contract needs,
//    as far as an independent implementation of the language can tell; it is not MongoDB.
// 3. Option validation and client ownership, observed through RecordingDb, which only
//    records calls and answers what the test scripted.

const MONGODB_URL = process.env.MONGODB_URL

interface RecordedCall {
  method: string
  args: unknown[]
}

/** Records the calls the store makes and answers them from per-method queues of scripted replies. */
class RecordingDb {
  readonly calls: RecordedCall[] = []
  readonly collectionNames: string[] = []
  readonly #replies = new Map<string, unknown[]>()

  reply (method: string, ...values: unknown[]): this {
    this.#replies.set(method, [...(this.#replies.get(method) ?? []), ...values])
    return this
  }

  #answer (method: string, args: unknown[]): unknown {
    this.calls.push({ method, args })
    const queue = this.#replies.get(method) ?? []
    if (queue.length === 0) throw new Error(`RecordingDb: no reply scripted for ${method}`)
    return queue.shift()
  }

  methods (): string[] {
    return this.calls.map(call => call.method)
  }

  collection (name: string): unknown {
    this.collectionNames.push(name)
    return { createIndexes: async (...args: unknown[]) => this.#answer('createIndexes', args) }
  }

  asDb (): Db {
    return this as unknown as Db
  }
}

/** Records what the store does with a host's client. */
class RecordingClient {
  readonly databaseNames: Array<string | undefined> = []
  closed = 0
  connected = 0
  readonly db = new RecordingDb()

  asClient (): MongoClient {
    const client = {
      db: (name?: string) => { this.databaseNames.push(name); return this.db },
      close: async () => { this.closed++ },
      connect: async () => { this.connected++ }
    }
    return client as unknown as MongoClient
  }
}

function storeOn (db: RecordingDb): MongoRefreshTokenStore {
  return new MongoRefreshTokenStore({ db: db.asDb() })
}

/** The store reads every time from its arguments or its clock: a moved clock needs no sleep. */
function movableClock (): ContractClock & { now: () => number } {
  let now = Date.now()
  return { now: () => now, advance: async (ms) => { now += ms } }
}

t.test('options are validated with messages that name the option', async (t) => {
  const db = new RecordingDb().asDb()
  const cases: Array<[unknown, string]> = [
    [undefined, 'MongoRefreshTokenStore: options must be an object'],
    [null, 'MongoRefreshTokenStore: options must be an object'],
    [{}, 'MongoRefreshTokenStore: give exactly one of client, db or url'],
    [{ db, url: 'mongodb://127.0.0.1' }, 'MongoRefreshTokenStore: give exactly one of client, db or url'],
    [{ db, client: new RecordingClient().asClient() }, 'MongoRefreshTokenStore: give exactly one of client, db or url'],
    [{ url: 'http://127.0.0.1:27017' }, 'MongoRefreshTokenStore: url must be a mongodb:// or mongodb+srv:// connection string'],
    [{ url: 42 }, 'MongoRefreshTokenStore: url must be a mongodb:// or mongodb+srv:// connection string'],
    [{ url: 'mongodb://127.0.0.1', databaseName: '' }, 'MongoRefreshTokenStore: databaseName must be a non-empty string'],
    [{ url: 'mongodb://127.0.0.1', databaseName: 7 }, 'MongoRefreshTokenStore: databaseName must be a non-empty string'],
    [{ db, databaseName: 'auth' }, 'MongoRefreshTokenStore: databaseName cannot be combined with db (the Db names its database)'],
    [{ db, collectionName: '' }, 'MongoRefreshTokenStore: collectionName must be a non-empty string'],
    [{ db: {} }, 'MongoRefreshTokenStore: db must be a mongodb Db'],
    [{ client: 'mongodb://127.0.0.1' }, 'MongoRefreshTokenStore: client must be a MongoClient'],
    [{ db, now: 5 }, 'MongoRefreshTokenStore: now must be a function']
  ]
  for (const [options, message] of cases) {
    t.throws(() => new MongoRefreshTokenStore(options as MongoRefreshTokenStoreOptions), { name: 'TypeError', message }, JSON.stringify(options) ?? 'undefined')
  }
})

t.test('a password in the url is not repeated when init fails', async (t) => {
  const store = new MongoRefreshTokenStore({ url: 'mongodb://app:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=100' })
  const err = await store.init().then(() => null, (err: Error) => err)
  t.match(err?.message, /^MongoRefreshTokenStore: cannot prepare MongoDB at mongodb:\/\/app:\*\*\*@127\.0\.0\.1:1\//)
  t.notMatch(err?.message, /hunter2/)
  await store.close()
})

t.test('a url the driver cannot parse is refused with the driver\'s reason as cause', async (t) => {
  const err = t.throws(() => new MongoRefreshTokenStore({ url: 'mongodb://' })) as Error
  t.match(err.message, /^MongoRefreshTokenStore: url is not a valid connection string: .+/)
  t.ok(err.cause instanceof Error, 'the driver\'s error is kept as cause')
})

t.test('the collection is refresh_sessions unless collectionName says otherwise', async (t) => {
  const db = new RecordingDb()
  t.ok(storeOn(db))
  t.ok(new MongoRefreshTokenStore({ db: db.asDb(), collectionName: 'auth_refresh' }))
  t.same(db.collectionNames, ['refresh_sessions', 'auth_refresh'])
})

t.test('init creates exactly the TTL index and the user index, and again when called twice', async (t) => {
  const db = new RecordingDb().reply('createIndexes', ['expiresAt_ttl', 'userId_lastUsedAt'], [])
  const store = storeOn(db)
  await store.init()
  await store.init()
  const expected = [[
    { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
    { key: { userId: 1, lastUsedAt: 1 }, name: 'userId_lastUsedAt' }
  ]]
  t.strictSame(db.calls, [{ method: 'createIndexes', args: expected }, { method: 'createIndexes', args: expected }])
})

t.test('a host client is used with databaseName and is neither connected nor closed by the store', async (t) => {
  const host = new RecordingClient()
  host.db.reply('createIndexes', [])
  const store = new MongoRefreshTokenStore({ client: host.asClient(), databaseName: 'auth' })
  t.same(host.databaseNames, ['auth'])
  t.same(host.db.collectionNames, ['refresh_sessions'])
  await store.init()
  await store.close()
  t.equal(host.connected, 0, 'init does not connect the host\'s client')
  t.equal(host.closed, 0, 'close leaves the host\'s client open')
  t.same(host.db.methods(), ['createIndexes'])
})

t.test('a store given a url owns its client: init connects it and close closes it', async (t) => {
  const connects = t.capture(MongoClient.prototype, 'connect', MongoClient.prototype.connect)
  const closes = t.capture(MongoClient.prototype, 'close', MongoClient.prototype.close)
  const dbs = t.capture(MongoClient.prototype, 'db', MongoClient.prototype.db)
  // Nothing listens on port 1: connecting fails after the 100 ms server selection timeout.
  const store = new MongoRefreshTokenStore({ url: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100', databaseName: 'auth' })
  const created = dbs()
  t.equal(created.length, 1)
  t.same(created[0].args, ['auth'])
  const err = await store.init().then(() => null, (err: Error) => err)
  t.match(err?.message, /^MongoRefreshTokenStore: cannot prepare MongoDB at mongodb:\/\/127\.0\.0\.1:1\//)
  t.equal((err?.cause as Error | undefined)?.name, 'MongoServerSelectionError')
  const connected = connects()
  t.equal(connected.length, 1, 'init connected the client')
  await store.close()
  const closed = closes()
  t.equal(closed.length, 1, 'close closed the client')
  t.equal(closed[0].receiver, connected[0].receiver, 'the very client it created')
  t.equal(created[0].receiver, connected[0].receiver)
})

t.test('MongoRefreshTokenStore passes the store contract on mingo\'s query language', async (t) => {
  refreshTokenStoreContract(declareWith(t), async () => {
    const clock = movableClock()
    const store = new MongoRefreshTokenStore({ db: new MingoDb().asDb(), now: clock.now })
    await store.init()
    return { store, clock, close: () => store.close() }
  })
})

t.test('a rotation is a read and one conditional update; a lost race reads again and rotates nothing', async (t) => {
  const db = new MingoDb()
  const store = new MongoRefreshTokenStore({ db: db.asDb() })
  const collection = db.collection('refresh_sessions')
  const now = Date.now()
  const session = makeSession(now)
  await store.create({ session, tokenHash: 'first', now, maxSessions: 100 })
  collection.calls.length = 0
  await store.rotate(rotation(session, 'first', 'second', now))
  t.same(collection.calls, ['findOne', 'findOneAndUpdate'])
  collection.calls.length = 0
  const [a, b] = await Promise.all([store.rotate(rotation(session, 'second', 'third-a', now)), store.rotate(rotation(session, 'second', 'third-b', now))])
  t.same([a?.rotated, b?.rotated], [true, false])
  t.same(collection.calls, ['findOne', 'findOne', 'findOneAndUpdate', 'findOneAndUpdate', 'findOne'], 'the loser\'s update matched nothing, so it read the winner\'s result')
  t.equal(b?.liveHash, 'third-a')
})

t.test('a session is one document with its times as Dates and its tokens embedded by hash', async (t) => {
  const db = new MingoDb()
  const store = new MongoRefreshTokenStore({ db: db.asDb() })
  const now = Date.now()
  const session = makeSession(now)
  await store.create({ session, tokenHash: 'first', now, maxSessions: 100 })
  await store.rotate(rotation(session, 'first', 'second', now + 1))
  t.same(db.collection('refresh_sessions').docs, [{
    _id: session.sessionId,
    userId: session.userId,
    version: 0,
    createdAt: new Date(now),
    lastUsedAt: new Date(now + 1),
    expiresAt: new Date(now + 1 + 7 * 86_400_000),
    userAgent: 'rotating-agent',
    ip: '10.0.0.2',
    live: 'second',
    gen: 1,
    tokens: { first: { g: 0, r: new Date(now + 1), c: 'second' }, second: { g: 1, r: null, c: null } },
    gens: { 0: 'first', 1: 'second' }
  }])
  t.same(MONGO_INDEXES.map(index => index.name), ['expiresAt_ttl', 'userId_lastUsedAt'])
})

// --- the integration suite: a real MongoDB server ---

t.test('MongoDB integration suite', {
  skip: MONGODB_URL === undefined || MONGODB_URL === '' ? 'MONGODB_URL is not set (no MongoDB server on this machine)' : false
}, async (t) => {
  const url = MONGODB_URL as string
  // Imported here so that a run without a server does not load cases it cannot run.
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 })
  await client.connect()
  const databaseName = `frj_test_${process.pid}_${randomBytes(4).toString('hex')}`
  t.teardown(async () => {
    await client.db(databaseName).dropDatabase()
    await client.close()
  })
  let collections = 0

  async function freshStore (options: Partial<MongoRefreshTokenStoreOptions> = {}): Promise<{ store: MongoRefreshTokenStore, collectionName: string }> {
    const collectionName = `refresh_sessions_${++collections}`
    const store = new MongoRefreshTokenStore({ client, databaseName, collectionName, ...options })
    await store.init()
    return { store, collectionName }
  }

  t.test('MongoRefreshTokenStore passes the store contract', async (t) => {
    refreshTokenStoreContract(declareWith(t), async () => {
      const clock = movableClock()
      const { store } = await freshStore({ now: clock.now })
      return { store, clock, close: () => store.close() }
    })
  })

  t.test('the server holds the indexes with their names and options, and init can run again', async (t) => {
    const { store, collectionName } = await freshStore()
    await store.init()
    const indexes = await client.db(databaseName).collection(collectionName).indexes()
    const byName = Object.fromEntries(indexes.map(index => [index.name, index]))
    t.same(byName.expiresAt_ttl?.key, { expiresAt: 1 })
    t.equal(byName.expiresAt_ttl?.expireAfterSeconds, 0)
    t.same(byName.userId_lastUsedAt?.key, { userId: 1, lastUsedAt: 1 })
    t.same(indexes.map(index => index.name).sort(), ['_id_', 'expiresAt_ttl', 'userId_lastUsedAt'])
  })

  t.test('expiresAt is stored as a BSON Date so the TTL monitor can delete it', async (t) => {
    const { store, collectionName } = await freshStore()
    const session = makeSession(Date.now())
    await store.create({ session, tokenHash: 'h', now: Date.now(), maxSessions: 100 })
    const collection = client.db(databaseName).collection(collectionName)
    t.equal(await collection.countDocuments({ _id: session.sessionId as never, expiresAt: { $type: 'date' } }), 1)
  })

  t.test('a store given the url connects its own client and closes it, leaving others open', async (t) => {
    const store = new MongoRefreshTokenStore({ url, databaseName, collectionName: `refresh_sessions_${++collections}` })
    await store.init()
    const session = makeSession(Date.now())
    await store.create({ session, tokenHash: 'h', now: Date.now(), maxSessions: 100 })
    t.equal((await store.listSessions(session.userId, Date.now())).length, 1)
    await store.close()
    await t.rejects(store.listSessions(session.userId, Date.now()), { name: 'MongoNotConnectedError' }, 'its client is closed')
    t.equal(await client.db(databaseName).collection('unrelated').countDocuments(), 0, 'the test\'s own client still works')
  })
})
