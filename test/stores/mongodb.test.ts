import { randomBytes } from 'node:crypto'
import t from 'tap'
import { MongoClient, type Db } from 'mongodb'
import { MongoRefreshTokenStore, type MongoRefreshTokenStoreOptions } from '../../lib/stores/mongodb.js'
import type { RefreshTokenRecord, RotateInput } from '../../types/index.js'

// Two kinds of tests live here.
//
// 1. The integration suite: the store contract (test/stores/contract.ts) and a few
//    server-side checks, run against a real MongoDB when MONGODB_URL is set. Without
//    it the suite is reported as skipped, never as passed.
// 2. Tests that need no server: option validation, and what the store *sends* and how
//    it *decides*, observed through `RecordingDb`. RecordingDb is not a database and
//    does not pretend to be one: it records each call the store makes on its
//    collection and answers with the reply the test scripted for that call. Nothing it
//    answers says anything about MongoDB's behaviour; the integration suite does that.

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

  /** Script the next replies of `method`, in order; a reply wrapped in `Rejection` makes that call reject. */
  reply (method: string, ...values: unknown[]): this {
    this.#replies.set(method, [...(this.#replies.get(method) ?? []), ...values])
    return this
  }

  #answer (method: string, args: unknown[]): unknown {
    this.calls.push({ method, args })
    const queue = this.#replies.get(method) ?? []
    if (queue.length === 0) throw new Error(`RecordingDb: no reply scripted for ${method}`)
    const value = queue.shift()
    if (value instanceof Rejection) throw value.reason
    return value
  }

  methods (): string[] {
    return this.calls.map(call => call.method)
  }

  collection (name: string): unknown {
    this.collectionNames.push(name)
    const answer = async (method: string, args: unknown[]): Promise<unknown> => this.#answer(method, args)
    return {
      createIndexes: (...args: unknown[]) => answer('createIndexes', args),
      insertOne: (...args: unknown[]) => answer('insertOne', args),
      findOneAndUpdate: (...args: unknown[]) => answer('findOneAndUpdate', args),
      findOne: (...args: unknown[]) => answer('findOne', args),
      updateOne: (...args: unknown[]) => answer('updateOne', args),
      deleteOne: (...args: unknown[]) => answer('deleteOne', args),
      deleteMany: (...args: unknown[]) => answer('deleteMany', args),
      distinct: (...args: unknown[]) => answer('distinct', args),
      // The driver's find() returns a cursor synchronously; the reply comes with toArray().
      find: (...args: unknown[]) => ({ toArray: () => answer('find', args) })
    }
  }

  asDb (): Db {
    return this as unknown as Db
  }
}

/** A scripted rejection for RecordingDb. */
class Rejection {
  constructor (readonly reason: unknown) {}
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

const T0 = 1_800_000_000_000
const DAY = 86_400_000
const GRACE = 10_000

function recordAt (now: number, overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return {
    hash: 'parent-hash',
    sessionId: 'session-1',
    userId: 'user-1',
    version: 3,
    sessionCreatedAt: now - 1000,
    createdAt: now - 500,
    expiresAt: now + 7 * DAY,
    lastUsedAt: now - 500,
    userAgent: 'laptop',
    ip: '10.0.0.1',
    rotatedAt: null,
    childHash: null,
    ...overrides
  }
}

/** The stored form of a record: the same fields with every time as a Date. */
function documentOf (record: RefreshTokenRecord): Record<string, unknown> {
  return {
    ...record,
    sessionCreatedAt: new Date(record.sessionCreatedAt),
    createdAt: new Date(record.createdAt),
    expiresAt: new Date(record.expiresAt),
    lastUsedAt: new Date(record.lastUsedAt),
    rotatedAt: record.rotatedAt === null ? null : new Date(record.rotatedAt)
  }
}

function rotation (now: number, overrides: Partial<RotateInput> = {}): RotateInput {
  return {
    userId: 'user-1',
    hash: 'parent-hash',
    childHash: 'child-hash',
    childExpiresAt: now + 7 * DAY,
    now,
    graceMs: GRACE,
    userAgent: 'phone',
    ip: '10.0.0.2',
    ...overrides
  }
}

function storeOn (db: RecordingDb): MongoRefreshTokenStore {
  return new MongoRefreshTokenStore({ db: db.asDb() })
}

const parentFilter = (now: number): unknown => ({ hash: 'parent-hash', userId: 'user-1', rotatedAt: null, expiresAt: { $gt: new Date(now) } })

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
    [{ client: 'mongodb://127.0.0.1' }, 'MongoRefreshTokenStore: client must be a MongoClient']
  ]
  for (const [options, message] of cases) {
    t.throws(() => new MongoRefreshTokenStore(options as MongoRefreshTokenStoreOptions), { name: 'TypeError', message }, JSON.stringify(options) ?? 'undefined')
  }
})

t.test('a url the driver cannot parse is refused with the driver\'s reason as cause', async (t) => {
  const err = t.throws(() => new MongoRefreshTokenStore({ url: 'mongodb://' })) as Error
  t.match(err.message, /^MongoRefreshTokenStore: url is not a valid connection string: .+/)
  t.ok(err.cause instanceof Error, 'the driver\'s error is kept as cause')
})

t.test('the collection is refresh_tokens unless collectionName says otherwise', async (t) => {
  const db = new RecordingDb()
  t.ok(storeOn(db))
  t.ok(new MongoRefreshTokenStore({ db: db.asDb(), collectionName: 'auth_refresh' }))
  t.same(db.collectionNames, ['refresh_tokens', 'auth_refresh'])
})

t.test('init creates exactly the TTL, unique-hash, session and user indexes, and again when called twice', async (t) => {
  const db = new RecordingDb().reply('createIndexes', ['expiresAt_ttl', 'hash_unique', 'sessionId', 'userId'], [])
  const store = storeOn(db)
  await store.init()
  await store.init()
  const expected = [[
    { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
    { key: { hash: 1 }, name: 'hash_unique', unique: true },
    { key: { sessionId: 1 }, name: 'sessionId' },
    { key: { userId: 1 }, name: 'userId' }
  ]]
  t.strictSame(db.calls, [{ method: 'createIndexes', args: expected }, { method: 'createIndexes', args: expected }])
})

t.test('a host client is used with databaseName and is neither connected nor closed by the store', async (t) => {
  const host = new RecordingClient()
  host.db.reply('createIndexes', [])
  const store = new MongoRefreshTokenStore({ client: host.asClient(), databaseName: 'auth' })
  t.same(host.databaseNames, ['auth'])
  t.same(host.db.collectionNames, ['refresh_tokens'])
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
  await t.rejects(store.init(), { name: 'MongoServerSelectionError' })
  const connected = connects()
  t.equal(connected.length, 1, 'init connected the client')
  await store.close()
  const closed = closes()
  t.equal(closed.length, 1, 'close closed the client')
  t.equal(closed[0].receiver, connected[0].receiver, 'the very client it created')
  t.equal(created[0].receiver, connected[0].receiver)
})

t.test('create inserts the record with its times as BSON Dates', async (t) => {
  const db = new RecordingDb().reply('insertOne', { acknowledged: true })
  const record = recordAt(T0)
  await storeOn(db).create(record)
  t.strictSame(db.calls, [{ method: 'insertOne', args: [documentOf(record)] }])
  t.ok((db.calls[0].args[0] as { expiresAt: unknown }).expiresAt instanceof Date, 'expiresAt is a Date, as the TTL index requires')
  t.equal((db.calls[0].args[0] as { rotatedAt: unknown }).rotatedAt, null, 'a new token is unrotated')
})

t.test('create keeps a rotation time given in the record as a Date', async (t) => {
  const db = new RecordingDb().reply('insertOne', { acknowledged: true })
  await storeOn(db).create(recordAt(T0, { rotatedAt: T0 + 1, childHash: 'c' }))
  const stored = db.calls[0].args[0] as { rotatedAt: unknown, childHash: unknown }
  t.same(stored.rotatedAt, new Date(T0 + 1))
  t.equal(stored.childHash, 'c')
})

t.test('create turns a duplicate-key error into a refusal and passes other errors through', async (t) => {
  const duplicate = Object.assign(new Error('E11000 duplicate key error'), { code: 11000 })
  const down = new Error('connection reset')
  const db = new RecordingDb().reply('insertOne', new Rejection(duplicate), new Rejection(down))
  const store = storeOn(db)
  const refused = await store.create(recordAt(T0)).then(() => null, (err: Error) => err)
  t.equal(refused?.message, 'refresh token hash already stored')
  t.equal(refused?.cause, duplicate)
  await t.rejects(store.create(recordAt(T0)), down)
})

t.test('a winning rotation marks the parent with one conditional update, then upserts the child', async (t) => {
  const now = T0 + 60_000
  const parent = recordAt(T0)
  const marked = { ...parent, rotatedAt: now, childHash: 'child-hash' }
  const db = new RecordingDb()
    .reply('findOneAndUpdate', documentOf(marked))
    .reply('updateOne', { upsertedCount: 1 })
    .reply('findOne', { _id: 'x' })
  const result = await storeOn(db).rotate(rotation(now))
  t.strictSame(result, { outcome: 'rotated', record: marked })
  t.strictSame(db.calls, [
    {
      method: 'findOneAndUpdate',
      args: [
        parentFilter(now),
        { $set: { rotatedAt: new Date(now), childHash: 'child-hash' } },
        { returnDocument: 'after', projection: { _id: 0 } }
      ]
    },
    {
      method: 'updateOne',
      args: [
        { hash: 'child-hash' },
        {
          $setOnInsert: {
            sessionId: 'session-1',
            userId: 'user-1',
            version: 3,
            sessionCreatedAt: new Date(parent.sessionCreatedAt),
            createdAt: new Date(now),
            expiresAt: new Date(now + 7 * DAY),
            lastUsedAt: new Date(now),
            userAgent: 'phone',
            ip: '10.0.0.2',
            rotatedAt: null,
            childHash: null
          }
        },
        { upsert: true }
      ]
    },
    { method: 'findOne', args: [{ hash: 'parent-hash' }, { projection: { _id: 1 } }] }
  ])
})

t.test('the child keeps the parent\'s user agent and ip when the rotating request has none', async (t) => {
  const now = T0
  const db = new RecordingDb()
    .reply('findOneAndUpdate', documentOf(recordAt(T0, { rotatedAt: now, childHash: 'child-hash' })))
    .reply('updateOne', { upsertedCount: 0 })
  await storeOn(db).rotate(rotation(now, { userAgent: null, ip: null }))
  const child = (db.calls[1].args[1] as { $setOnInsert: Record<string, unknown> }).$setOnInsert
  t.equal(child.userAgent, 'laptop')
  t.equal(child.ip, '10.0.0.1')
})

t.test('when the child was already there, the rotation does not re-check the parent', async (t) => {
  const db = new RecordingDb()
    .reply('findOneAndUpdate', documentOf(recordAt(T0, { rotatedAt: T0, childHash: 'child-hash' })))
    .reply('updateOne', { upsertedCount: 0 })
  const result = await storeOn(db).rotate(rotation(T0))
  t.equal(result.outcome, 'rotated')
  t.same(db.methods(), ['findOneAndUpdate', 'updateOne'])
})

t.test('a duplicate key on the child upsert means another caller stored it; other errors fail the rotation', async (t) => {
  const duplicate = Object.assign(new Error('E11000'), { code: 11000 })
  const down = new Error('not primary')
  const marked = documentOf(recordAt(T0, { rotatedAt: T0, childHash: 'child-hash' }))
  const db = new RecordingDb()
    .reply('findOneAndUpdate', marked, marked)
    .reply('updateOne', new Rejection(duplicate), new Rejection(down))
  const store = storeOn(db)
  t.equal((await store.rotate(rotation(T0))).outcome, 'rotated')
  await t.rejects(store.rotate(rotation(T0)), down)
  t.same(db.methods(), ['findOneAndUpdate', 'updateOne', 'findOneAndUpdate', 'updateOne'])
})

t.test('a child inserted after its session was deleted is deleted again and the token is not found', async (t) => {
  const db = new RecordingDb()
    .reply('findOneAndUpdate', documentOf(recordAt(T0, { rotatedAt: T0, childHash: 'child-hash' })))
    .reply('updateOne', { upsertedCount: 1 })
    .reply('findOne', null)
    .reply('deleteOne', { deletedCount: 1 })
  t.strictSame(await storeOn(db).rotate(rotation(T0)), { outcome: 'not-found' })
  t.strictSame(db.calls.slice(2), [
    { method: 'findOne', args: [{ hash: 'parent-hash' }, { projection: { _id: 1 } }] },
    { method: 'deleteOne', args: [{ hash: 'child-hash', sessionId: 'session-1' }] }
  ])
})

t.test('when the conditional update misses, the record is read to tell grace, reuse and not-found apart', async (t) => {
  const rotatedAt = T0
  const rotated = recordAt(T0 - 1000, { rotatedAt, childHash: 'child-hash' })

  t.test('an unknown token, or one of another user, is not found', async (t) => {
    const db = new RecordingDb().reply('findOneAndUpdate', null).reply('findOne', null)
    t.strictSame(await storeOn(db).rotate(rotation(T0)), { outcome: 'not-found' })
    t.strictSame(db.calls[1], { method: 'findOne', args: [{ hash: 'parent-hash', userId: 'user-1' }, { projection: { _id: 0 } }] })
    t.equal(db.calls.length, 2, 'nothing is written')
  })

  t.test('a token past expiresAt is not found even while the TTL monitor has not deleted it', async (t) => {
    const db = new RecordingDb().reply('findOneAndUpdate', null).reply('findOne', documentOf({ ...rotated, expiresAt: T0 + 5000 }))
    t.strictSame(await storeOn(db).rotate(rotation(T0 + 5000)), { outcome: 'not-found' })
    t.equal(db.calls.length, 2, 'nothing is written')
  })

  t.test('an unrotated token that the update missed (stored after it ran) is not found', async (t) => {
    const db = new RecordingDb().reply('findOneAndUpdate', null).reply('findOne', documentOf(recordAt(T0)))
    t.strictSame(await storeOn(db).rotate(rotation(T0)), { outcome: 'not-found' })
    t.equal(db.calls.length, 2, 'nothing is written')
  })

  t.test('the same child within the grace window (bounds included) is grace, and the child is upserted again', async (t) => {
    const db = new RecordingDb()
      .reply('findOneAndUpdate', null, null)
      .reply('findOne', documentOf(rotated), documentOf(rotated), { _id: 'x' })
      .reply('updateOne', { upsertedCount: 0 }, { upsertedCount: 1 })
    const store = storeOn(db)
    t.strictSame(await store.rotate(rotation(rotatedAt + 1)), { outcome: 'grace', record: rotated })
    t.strictSame(await store.rotate(rotation(rotatedAt + GRACE)), { outcome: 'grace', record: rotated }, 'exactly graceMs later')
    t.same(db.methods(), ['findOneAndUpdate', 'findOne', 'updateOne', 'findOneAndUpdate', 'findOne', 'updateOne', 'findOne'],
      'the repairing upsert that inserted re-checks the parent')
    const repaired = db.calls[5].args
    t.same(repaired[0], { hash: 'child-hash' })
    const child = (repaired[1] as { $setOnInsert: Record<string, unknown> }).$setOnInsert
    t.same(child.createdAt, new Date(rotatedAt), 'the repaired child is dated from the rotation')
    t.same(child.expiresAt, new Date(rotatedAt + 7 * DAY), 'and lives a full lifetime from it')
  })

  t.test('the same child after the grace window is reuse, and nothing is written', async (t) => {
    const db = new RecordingDb().reply('findOneAndUpdate', null).reply('findOne', documentOf(rotated))
    t.strictSame(await storeOn(db).rotate(rotation(rotatedAt + GRACE + 1)), { outcome: 'reused', record: rotated })
    t.same(db.methods(), ['findOneAndUpdate', 'findOne'])
  })

  t.test('another child within the grace window is reuse, and that child is never stored', async (t) => {
    const db = new RecordingDb().reply('findOneAndUpdate', null).reply('findOne', documentOf(rotated))
    t.strictSame(await storeOn(db).rotate(rotation(rotatedAt + 1, { childHash: 'forged-child' })), { outcome: 'reused', record: rotated })
    t.same(db.methods(), ['findOneAndUpdate', 'findOne'])
  })

  t.test('a grace retry whose session was deleted meanwhile is not found', async (t) => {
    const db = new RecordingDb()
      .reply('findOneAndUpdate', null)
      .reply('findOne', documentOf(rotated), null)
      .reply('updateOne', { upsertedCount: 1 })
      .reply('deleteOne', { deletedCount: 1 })
    t.strictSame(await storeOn(db).rotate(rotation(rotatedAt + 1)), { outcome: 'not-found' })
    t.same(db.methods(), ['findOneAndUpdate', 'findOne', 'updateOne', 'findOne', 'deleteOne'])
  })
})

t.test('listSessions asks for unrotated, unexpired tokens newest first and keeps the newest of each session', async (t) => {
  const now = T0 + 10_000
  const doc = (sessionId: string, createdAt: number, userAgent: string): Record<string, unknown> => ({
    sessionId,
    sessionCreatedAt: new Date(createdAt),
    createdAt: new Date(createdAt + 5000),
    lastUsedAt: new Date(createdAt + 5000),
    expiresAt: new Date(createdAt + 7 * DAY),
    userAgent,
    ip: null
  })
  const db = new RecordingDb().reply('find', [
    doc('phone', T0 + 2000, 'phone newest'),
    doc('laptop', T0, 'laptop newest'),
    doc('phone', T0 + 2000, 'phone older')
  ])
  const sessions = await storeOn(db).listSessions('user-1', now)
  t.strictSame(db.calls, [{
    method: 'find',
    args: [
      { userId: 'user-1', rotatedAt: null, expiresAt: { $gt: new Date(now) } },
      {
        projection: { _id: 0, sessionId: 1, sessionCreatedAt: 1, createdAt: 1, lastUsedAt: 1, expiresAt: 1, userAgent: 1, ip: 1 },
        sort: { createdAt: -1 }
      }
    ]
  }])
  t.strictSame(sessions, [
    { sessionId: 'laptop', userId: 'user-1', createdAt: T0, lastUsedAt: T0 + 5000, expiresAt: T0 + 7 * DAY, userAgent: 'laptop newest', ip: null },
    { sessionId: 'phone', userId: 'user-1', createdAt: T0 + 2000, lastUsedAt: T0 + 7000, expiresAt: T0 + 2000 + 7 * DAY, userAgent: 'phone newest', ip: null }
  ], 'oldest session first, each from its newest token')
})

t.test('deleteSession is one deleteMany scoped to the user and reports whether it deleted anything', async (t) => {
  const db = new RecordingDb().reply('deleteMany', { deletedCount: 3 }, { deletedCount: 0 })
  const store = storeOn(db)
  t.equal(await store.deleteSession('user-1', 'session-1'), true)
  t.equal(await store.deleteSession('user-2', 'session-1'), false)
  t.strictSame(db.calls, [
    { method: 'deleteMany', args: [{ sessionId: 'session-1', userId: 'user-1' }] },
    { method: 'deleteMany', args: [{ sessionId: 'session-1', userId: 'user-2' }] }
  ])
})

t.test('deleteUser counts the user\'s sessions, then deletes every token with one deleteMany', async (t) => {
  const db = new RecordingDb().reply('distinct', ['s1', 's2']).reply('deleteMany', { deletedCount: 9 })
  t.equal(await storeOn(db).deleteUser('user-1'), 2, 'sessions, not documents')
  t.strictSame(db.calls, [
    { method: 'distinct', args: ['sessionId', { userId: 'user-1' }] },
    { method: 'deleteMany', args: [{ userId: 'user-1' }] }
  ])
})

t.test('RecordingDb fails loudly on a call no test scripted', async (t) => {
  await t.rejects(storeOn(new RecordingDb()).deleteSession('u', 's'), { message: 'RecordingDb: no reply scripted for deleteMany' })
})

// --- the integration suite: a real MongoDB server ---

t.test('MongoDB integration suite', {
  skip: MONGODB_URL === undefined || MONGODB_URL === '' ? 'MONGODB_URL is not set (no MongoDB server on this machine)' : false
}, async (t) => {
  const url = MONGODB_URL as string
  // Imported here so that a run without a server does not load cases it cannot run.
  const { refreshTokenStoreContract, makeRecord } = await import('./contract.js')
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 })
  await client.connect()
  const databaseName = `frj_test_${process.pid}_${randomBytes(4).toString('hex')}`
  t.teardown(async () => {
    await client.db(databaseName).dropDatabase()
    await client.close()
  })
  let collections = 0

  async function freshStore (options: Partial<MongoRefreshTokenStoreOptions> = {}): Promise<{ store: MongoRefreshTokenStore, collectionName: string }> {
    const collectionName = `refresh_tokens_${++collections}`
    const store = new MongoRefreshTokenStore({ client, databaseName, collectionName, ...options })
    await store.init()
    return { store, collectionName }
  }

  t.test('MongoRefreshTokenStore passes the store contract', async (t) => {
    refreshTokenStoreContract(t, async () => {
      const { store } = await freshStore()
      // The store takes every time from its arguments, so a moved clock needs no sleep.
      let offset = 0
      const base = Date.now()
      return {
        store,
        clock: { now: () => base + offset, advance: async (ms: number) => { offset += ms } },
        close: () => store.close()
      }
    })
  })

  t.test('the server holds the indexes with their names and options, and init can run again', async (t) => {
    const { store, collectionName } = await freshStore()
    await store.init()
    const indexes = await client.db(databaseName).collection(collectionName).indexes()
    const byName = Object.fromEntries(indexes.map(index => [index.name, index]))
    t.same(byName.expiresAt_ttl?.key, { expiresAt: 1 })
    t.equal(byName.expiresAt_ttl?.expireAfterSeconds, 0)
    t.same(byName.hash_unique?.key, { hash: 1 })
    t.equal(byName.hash_unique?.unique, true)
    t.same(byName.sessionId?.key, { sessionId: 1 })
    t.same(byName.userId?.key, { userId: 1 })
    t.same(indexes.map(index => index.name).sort(), ['_id_', 'expiresAt_ttl', 'hash_unique', 'sessionId', 'userId'])
  })

  t.test('expiresAt is stored as a BSON Date so the TTL monitor can delete it', async (t) => {
    const { store, collectionName } = await freshStore()
    const record = makeRecord(Date.now())
    await store.create(record)
    const collection = client.db(databaseName).collection(collectionName)
    t.equal(await collection.countDocuments({ hash: record.hash, expiresAt: { $type: 'date' } }), 1)
  })

  t.test('a store given the url connects its own client and closes it, leaving others open', async (t) => {
    const store = new MongoRefreshTokenStore({ url, databaseName, collectionName: `refresh_tokens_${++collections}` })
    await store.init()
    const record = makeRecord(Date.now())
    await store.create(record)
    t.equal((await store.listSessions(record.userId, Date.now())).length, 1)
    await store.close()
    await t.rejects(store.listSessions(record.userId, Date.now()), { name: 'MongoNotConnectedError' }, 'its client is closed')
    t.equal(await client.db(databaseName).collection('unrelated').countDocuments(), 0, 'the test\'s own client still works')
  })
})
