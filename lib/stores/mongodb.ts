import { MongoClient, type Collection, type Db, type IndexDescription } from 'mongodb'
import type {
  RefreshTokenRecord,
  RefreshTokenStore,
  RotateInput,
  RotateResult,
  SessionRecord
} from '../../types/index.js'

/** Options of the MongoDB refresh-token store. Give exactly one of `client`, `db` or `url`. */
export interface MongoRefreshTokenStoreOptions {
  /**
   * A `MongoClient` of the host app. The store uses it and never closes it.
   * @default undefined
   */
  client?: MongoClient
  /**
   * A `Db` of the host app. The store uses it and never closes its client.
   * @default undefined
   */
  db?: Db
  /**
   * A connection string (`mongodb://` or `mongodb+srv://`). The store then owns its
   * client: it connects in `init()` and disconnects in `close()`.
   * @default undefined
   */
  url?: string
  /**
   * The database to use with `client` or `url` (not with `db`).
   * @default the database named in the connection string; the driver's `'test'` when it names none
   */
  databaseName?: string
  /**
   * The collection that holds the refresh tokens.
   * @default 'refresh_tokens'
   */
  collectionName?: string
}

export const DEFAULT_MONGO_COLLECTION_NAME = 'refresh_tokens'

const STORE_NAME = 'MongoRefreshTokenStore'
const DUPLICATE_KEY = 11000

/**
 * The indexes `init()` creates. Names are part of the contract: an existing index
 * with the same name and another definition fails `init()` instead of piling up.
 */
const INDEXES: IndexDescription[] = [
  // expireAfterSeconds 0: each document goes when its own `expiresAt` (a BSON Date) passes.
  { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
  { key: { hash: 1 }, name: 'hash_unique', unique: true },
  { key: { sessionId: 1 }, name: 'sessionId' },
  { key: { userId: 1 }, name: 'userId' }
]

/** A refresh token as stored: the record with its times as BSON Dates (the TTL index needs one). */
export interface RefreshTokenDocument {
  hash: string
  sessionId: string
  userId: string
  version: number
  sessionCreatedAt: Date
  createdAt: Date
  expiresAt: Date
  lastUsedAt: Date
  userAgent: string | null
  ip: string | null
  rotatedAt: Date | null
  childHash: string | null
}

function isNonEmptyString (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function hasMethod (value: unknown, method: string): boolean {
  return typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[method] === 'function'
}

function toDocument (record: RefreshTokenRecord): RefreshTokenDocument {
  return {
    hash: record.hash,
    sessionId: record.sessionId,
    userId: record.userId,
    version: record.version,
    sessionCreatedAt: new Date(record.sessionCreatedAt),
    createdAt: new Date(record.createdAt),
    expiresAt: new Date(record.expiresAt),
    lastUsedAt: new Date(record.lastUsedAt),
    userAgent: record.userAgent,
    ip: record.ip,
    rotatedAt: record.rotatedAt === null ? null : new Date(record.rotatedAt),
    childHash: record.childHash
  }
}

/** A record back from its document; only rotated records are ever handed out (`rotate`'s outcomes). */
function rotatedRecord (doc: RefreshTokenDocument): RefreshTokenRecord {
  return {
    hash: doc.hash,
    sessionId: doc.sessionId,
    userId: doc.userId,
    version: doc.version,
    sessionCreatedAt: doc.sessionCreatedAt.getTime(),
    createdAt: doc.createdAt.getTime(),
    expiresAt: doc.expiresAt.getTime(),
    lastUsedAt: doc.lastUsedAt.getTime(),
    userAgent: doc.userAgent,
    ip: doc.ip,
    rotatedAt: (doc.rotatedAt as Date).getTime(),
    childHash: doc.childHash
  }
}

function isDuplicateKey (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === DUPLICATE_KEY
}

/**
 * Refresh-token store in MongoDB. Works on a standalone server: no transaction is
 * used; every step that must be atomic is one single-document operation.
 *
 * `init()` creates the indexes (idempotent); the core plugin calls it when the app
 * is ready. The TTL monitor deletes expired documents only about once a minute, so
 * every lookup checks `expiresAt` itself as well.
 */
export class MongoRefreshTokenStore implements RefreshTokenStore {
  readonly #collection: Collection<RefreshTokenDocument>
  /** The client this store created from `url`, and so must close; null for the host's. */
  readonly #ownedClient: MongoClient | null

  constructor (options: MongoRefreshTokenStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError(`${STORE_NAME}: options must be an object`)
    const { client, db, url, databaseName, collectionName = DEFAULT_MONGO_COLLECTION_NAME } = options
    const given = [client, db, url].filter(value => value !== undefined).length
    if (given !== 1) throw new TypeError(`${STORE_NAME}: give exactly one of client, db or url`)
    if (databaseName !== undefined) {
      if (!isNonEmptyString(databaseName)) throw new TypeError(`${STORE_NAME}: databaseName must be a non-empty string`)
      if (db !== undefined) throw new TypeError(`${STORE_NAME}: databaseName cannot be combined with db (the Db names its database)`)
    }
    if (!isNonEmptyString(collectionName)) throw new TypeError(`${STORE_NAME}: collectionName must be a non-empty string`)

    let database: Db
    if (db !== undefined) {
      if (!hasMethod(db, 'collection')) throw new TypeError(`${STORE_NAME}: db must be a mongodb Db`)
      database = db
      this.#ownedClient = null
    } else if (client !== undefined) {
      if (!hasMethod(client, 'db')) throw new TypeError(`${STORE_NAME}: client must be a MongoClient`)
      database = client.db(databaseName)
      this.#ownedClient = null
    } else {
      if (typeof url !== 'string' || !/^mongodb(\+srv)?:\/\//.test(url)) {
        throw new TypeError(`${STORE_NAME}: url must be a mongodb:// or mongodb+srv:// connection string`)
      }
      let owned: MongoClient
      try {
        owned = new MongoClient(url)
      } catch (err) {
        throw new TypeError(`${STORE_NAME}: url is not a valid connection string: ${(err as Error).message}`, { cause: err })
      }
      database = owned.db(databaseName)
      this.#ownedClient = owned
    }
    this.#collection = database.collection<RefreshTokenDocument>(collectionName)
  }

  /** Connect the client this store owns (with `url`) and create the indexes. Safe to call again. */
  async init (): Promise<void> {
    if (this.#ownedClient !== null) await this.#ownedClient.connect()
    await this.#collection.createIndexes(INDEXES)
  }

  async create (record: RefreshTokenRecord): Promise<void> {
    try {
      await this.#collection.insertOne(toDocument(record))
    } catch (err) {
      if (isDuplicateKey(err)) throw new Error('refresh token hash already stored', { cause: err })
      throw err
    }
  }

  async rotate (input: RotateInput): Promise<RotateResult> {
    const now = new Date(input.now)
    // The one atomic step: only a current, unexpired token of this user can be marked
    // rotated, and only once, so concurrent callers can never store two different children.
    const parent = await this.#collection.findOneAndUpdate(
      { hash: input.hash, userId: input.userId, rotatedAt: null, expiresAt: { $gt: now } },
      { $set: { rotatedAt: now, childHash: input.childHash } },
      { returnDocument: 'after', projection: { _id: 0 } }
    )
    if (parent !== null) {
      const stored = await this.#storeChild(parent, input)
      return stored ? { outcome: 'rotated', record: rotatedRecord(parent) } : { outcome: 'not-found' }
    }

    const found = await this.#collection.findOne({ hash: input.hash, userId: input.userId }, { projection: { _id: 0 } })
    // The TTL monitor may not have deleted an expired token yet.
    if (found === null || found.expiresAt.getTime() <= input.now) return { outcome: 'not-found' }
    // Unrotated, yet the conditional update missed it: it was stored after that update ran.
    // Nobody can hold a token that new, so there is nothing to rotate.
    if (found.rotatedAt === null) return { outcome: 'not-found' }
    const withinGrace = input.now - found.rotatedAt.getTime() <= input.graceMs
    // A different child means another server key derived it: never hand that out as grace.
    if (!withinGrace || found.childHash !== input.childHash) return { outcome: 'reused', record: rotatedRecord(found) }
    const stored = await this.#storeChild(found, input)
    return stored ? { outcome: 'grace', record: rotatedRecord(found) } : { outcome: 'not-found' }
  }

  /**
   * Store the child of a parent already marked rotated; false when the parent's session
   * was deleted meanwhile.
   *
   * The parent is marked first and the child inserted second (no transaction). If the
   * process dies between the two, the parent is rotated and its child missing; the
   * client, which got no answer, retries with the same token, and because the child is
   * derived deterministically the grace path calls this again and stores the very child
   * it is handed. So the insert is an idempotent upsert keyed on the child's hash:
   * concurrent grace retries and the winner all converge on one document.
   *
   * A `deleteSession`/`deleteUser` running between the two steps could delete the parent
   * and miss the child inserted just after. Whoever inserted the child therefore checks
   * that the parent is still there, and deletes the child again when it is not.
   */
  async #storeChild (parent: RefreshTokenDocument, input: RotateInput): Promise<boolean> {
    const rotatedAt = (parent.rotatedAt as Date).getTime()
    const child: Omit<RefreshTokenDocument, 'hash'> = {
      sessionId: parent.sessionId,
      userId: parent.userId,
      version: parent.version,
      sessionCreatedAt: parent.sessionCreatedAt,
      createdAt: new Date(rotatedAt),
      // A full lifetime from the rotation, also when a grace retry repairs it later.
      expiresAt: new Date(rotatedAt + (input.childExpiresAt - input.now)),
      lastUsedAt: new Date(rotatedAt),
      userAgent: input.userAgent ?? parent.userAgent,
      ip: input.ip ?? parent.ip,
      rotatedAt: null,
      childHash: null
    }
    let inserted: boolean
    try {
      const result = await this.#collection.updateOne(
        { hash: parent.childHash as string },
        { $setOnInsert: child },
        { upsert: true }
      )
      inserted = result.upsertedCount === 1
    } catch (err) {
      // Two upserts of one new hash can race on the unique index; the other one inserted it.
      if (!isDuplicateKey(err)) throw err
      inserted = false
    }
    if (!inserted) return true
    const stillThere = await this.#collection.findOne({ hash: parent.hash }, { projection: { _id: 1 } })
    if (stillThere !== null) return true
    await this.#collection.deleteOne({ hash: parent.childHash as string, sessionId: parent.sessionId })
    return false
  }

  async listSessions (userId: string, now: number): Promise<SessionRecord[]> {
    const docs = await this.#collection.find(
      { userId, rotatedAt: null, expiresAt: { $gt: new Date(now) } },
      {
        projection: { _id: 0, sessionId: 1, sessionCreatedAt: 1, createdAt: 1, lastUsedAt: 1, expiresAt: 1, userAgent: 1, ip: 1 },
        sort: { createdAt: -1 }
      }
    ).toArray()
    const newest = new Map<string, SessionRecord>()
    for (const doc of docs) {
      if (newest.has(doc.sessionId)) continue
      newest.set(doc.sessionId, {
        sessionId: doc.sessionId,
        userId,
        createdAt: doc.sessionCreatedAt.getTime(),
        lastUsedAt: doc.lastUsedAt.getTime(),
        expiresAt: doc.expiresAt.getTime(),
        userAgent: doc.userAgent,
        ip: doc.ip
      })
    }
    return [...newest.values()].sort((a, b) => a.createdAt - b.createdAt)
  }

  async deleteSession (userId: string, sessionId: string): Promise<boolean> {
    // userId in the filter: a session id of another user deletes nothing.
    const result = await this.#collection.deleteMany({ sessionId, userId })
    return result.deletedCount > 0
  }

  async deleteUser (userId: string): Promise<number> {
    // The count is only reported; the deletion itself is the one deleteMany.
    const sessions = await this.#collection.distinct('sessionId', { userId })
    await this.#collection.deleteMany({ userId })
    return sessions.length
  }

  /** Disconnect the client this store created from `url`; a host's client is left open. */
  async close (): Promise<void> {
    if (this.#ownedClient !== null) await this.#ownedClient.close()
  }
}
