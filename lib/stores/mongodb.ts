import { MongoClient, type Collection, type Db, type IndexDescription } from 'mongodb'
import type {
  CreateSessionInput,
  CreateSessionResult,
  RefreshTokenStore,
  RotateInput,
  RotationFacts,
  SessionRecord,
  TokenFacts
} from './types.js'

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
   * The collection that holds the sessions and their refresh-token hashes.
   * @default 'refresh_sessions'
   */
  collectionName?: string
  /**
   * The clock, in ms since the epoch, for the deletes' count of live sessions.
   * @default Date.now
   */
  now?: () => number
}

export const DEFAULT_MONGO_COLLECTION_NAME = 'refresh_sessions'

const STORE_NAME = 'MongoRefreshTokenStore'
const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000

/** A connection string fit for a message: its password replaced. */
function redactedUrl (url: string): string {
  return `MongoDB at ${url.replace(/^(mongodb(?:\+srv)?:\/\/[^:/@]+:)[^@/]*@/, '$1***@')}`
}
const DUPLICATE_KEY = 11000

/**
 * The indexes `init()` creates. Names are part of the contract: an existing index
 * with the same name and another definition fails `init()` instead of piling up.
 */
export const MONGO_INDEXES: IndexDescription[] = [
  // expireAfterSeconds 0: each session goes when its own `expiresAt` (a BSON Date) passes.
  { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
  // The user's sessions, least recently used first (eviction, listing, logout-all).
  { key: { userId: 1, lastUsedAt: 1 }, name: 'userId_lastUsedAt' }
]

/** One token of a session: its generation, and once rotated, when and into which child. */
export interface TokenEntryDocument {
  g: number
  r: Date | null
  c: string | null
}

/**
 * A session as stored: one document, its tokens embedded by hash (at most the live one
 * and the rotated ones kept), so that every change to a session is one atomic update.
 */
export interface SessionDocument {
  _id: string
  userId: string
  version: number
  createdAt: Date
  lastUsedAt: Date
  expiresAt: Date
  userAgent: string | null
  ip: string | null
  /** Hash of the live token. */
  live: string
  /** Generation of the live token. */
  gen: number
  /** The tokens by hash. */
  tokens: Record<string, TokenEntryDocument>
  /** Hash of each token by generation, to forget the oldest without a scan. */
  gens: Record<string, string>
}

const SESSION_PROJECTION = { userId: 1, version: 1, createdAt: 1, lastUsedAt: 1, expiresAt: 1, userAgent: 1, ip: 1, live: 1, gen: 1 }

function isNonEmptyString (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function hasMethod (value: unknown, method: string): boolean {
  return typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[method] === 'function'
}

function isDuplicateKey (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === DUPLICATE_KEY
}

function sessionOf (doc: Omit<SessionDocument, 'tokens' | 'gens'>): SessionRecord {
  return {
    sessionId: doc._id,
    userId: doc.userId,
    version: doc.version,
    createdAt: doc.createdAt.getTime(),
    lastUsedAt: doc.lastUsedAt.getTime(),
    expiresAt: doc.expiresAt.getTime(),
    userAgent: doc.userAgent,
    ip: doc.ip
  }
}

function factsOf (doc: SessionDocument, entry: TokenEntryDocument): TokenFacts {
  return { session: sessionOf(doc), rotatedAt: entry.r === null ? null : entry.r.getTime(), childHash: entry.c, liveHash: doc.live }
}

/**
 * Refresh-token store in MongoDB: one document per session with its tokens' hashes
 * embedded. Works on a standalone server: no transaction is used; a rotation is one
 * conditional update of the session document (only while the presented token is still
 * its live one), so concurrent rotations of one token rotate it exactly once.
 *
 * `init()` creates the indexes (idempotent); the plugins call it when the app is ready.
 * The TTL monitor deletes expired sessions only about once a minute, so every lookup
 * checks `expiresAt` itself as well.
 */
export class MongoRefreshTokenStore implements RefreshTokenStore {
  readonly #collection: Collection<SessionDocument>
  /** The client this store created from `url`, and so must close; null for the host's. */
  readonly #ownedClient: MongoClient | null
  readonly #now: () => number
  /** What init() names when it fails. */
  #where = 'the collection (the app\'s own client)'

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
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError(`${STORE_NAME}: now must be a function`)
    this.#now = options.now ?? Date.now

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
        // A server that cannot be reached stops init() within 5 s unless the URL says otherwise.
        owned = new MongoClient(url, /[?&]serverSelectionTimeoutMS=/i.test(url) ? {} : { serverSelectionTimeoutMS: DEFAULT_SERVER_SELECTION_TIMEOUT_MS })
      } catch (err) {
        throw new TypeError(`${STORE_NAME}: url is not a valid connection string: ${(err as Error).message}`, { cause: err })
      }
      database = owned.db(databaseName)
      this.#ownedClient = owned
      this.#where = redactedUrl(url)
    }
    this.#collection = database.collection<SessionDocument>(collectionName)
  }

  /**
   * Connect the client this store owns (with `url`) and create the indexes. Safe to call
   * again. A server that cannot be reached rejects naming the address, the cause kept.
   */
  async init (): Promise<void> {
    try {
      if (this.#ownedClient !== null) await this.#ownedClient.connect()
      await this.#collection.createIndexes(MONGO_INDEXES)
    } catch (err) {
      throw new Error(`${STORE_NAME}: cannot prepare ${this.#where}: ${(err as Error).message}`, { cause: err })
    }
  }

  async create (input: CreateSessionInput): Promise<CreateSessionResult> {
    const { session, tokenHash, now, maxSessions } = input
    const live = await this.#collection.find(
      { userId: session.userId, expiresAt: { $gt: new Date(now) } },
      { projection: { _id: 1 }, sort: { lastUsedAt: 1 } }
    ).toArray()
    // Least recently used first. Concurrent logins may each see room for themselves:
    // the limit holds again at the user's next login.
    const evicted = live.slice(0, Math.max(0, live.length - maxSessions + 1)).map(doc => doc._id)
    if (evicted.length > 0) await this.#collection.deleteMany({ _id: { $in: evicted }, userId: session.userId })
    if (session.expiresAt <= now) return { evicted }
    try {
      await this.#collection.insertOne({
        _id: session.sessionId,
        userId: session.userId,
        version: session.version,
        createdAt: new Date(session.createdAt),
        lastUsedAt: new Date(session.lastUsedAt),
        expiresAt: new Date(session.expiresAt),
        userAgent: session.userAgent,
        ip: session.ip,
        live: tokenHash,
        gen: 0,
        tokens: { [tokenHash]: { g: 0, r: null, c: null } },
        gens: { 0: tokenHash }
      })
    } catch (err) {
      if (isDuplicateKey(err)) throw new Error('session id already stored', { cause: err })
      throw err
    }
    return { evicted }
  }

  async #read (userId: string, sessionId: string, hash: string, now: number, extra: Record<string, 1> = {}): Promise<SessionDocument | null> {
    return await this.#collection.findOne(
      { _id: sessionId, userId, expiresAt: { $gt: new Date(now) } },
      { projection: { ...SESSION_PROJECTION, [`tokens.${hash}`]: 1, ...extra } }
    )
  }

  async find (userId: string, sessionId: string, hash: string, now: number): Promise<TokenFacts | null> {
    const doc = await this.#read(userId, sessionId, hash, now)
    const entry = doc?.tokens?.[hash]
    return doc === null || entry === undefined ? null : factsOf(doc, entry)
  }

  async rotate (input: RotateInput): Promise<RotationFacts | null> {
    const { userId, sessionId, hash, childHash, now, keepRotated } = input
    // The generations come along: they name the token the rotation forgets.
    const doc = await this.#read(userId, sessionId, hash, now, { gens: 1 })
    const entry = doc?.tokens?.[hash]
    if (doc === null || entry === undefined) return null
    if (doc.live !== hash) return { ...factsOf(doc, entry), rotated: false }
    const gen = doc.gen + 1
    const forget = gen - keepRotated - 1
    const nowDate = new Date(now)
    const set: Record<string, unknown> = {
      [`tokens.${hash}.r`]: nowDate,
      [`tokens.${hash}.c`]: childHash,
      [`tokens.${childHash}`]: { g: gen, r: null, c: null },
      [`gens.${gen}`]: childHash,
      live: childHash,
      gen,
      lastUsedAt: nowDate,
      expiresAt: new Date(input.childExpiresAt)
    }
    if (input.userAgent !== null) set.userAgent = input.userAgent
    if (input.ip !== null) set.ip = input.ip
    const forgotten = forget >= 0 ? doc.gens?.[forget] : undefined
    // The one atomic step: only while the presented token is still live, so concurrent
    // rotations of one token rotate it once; the losers read what the winner did.
    const updated = await this.#collection.findOneAndUpdate(
      { _id: sessionId, userId, live: hash, expiresAt: { $gt: nowDate } },
      {
        $set: set,
        ...(forgotten !== undefined && { $unset: { [`tokens.${forgotten}`]: '', [`gens.${forget}`]: '' } })
      },
      { returnDocument: 'after', projection: { ...SESSION_PROJECTION } }
    )
    if (updated === null) {
      const after = await this.find(userId, sessionId, hash, now)
      return after === null ? null : { ...after, rotated: false }
    }
    return { session: sessionOf(updated), rotatedAt: null, childHash: null, liveHash: childHash, rotated: true }
  }

  async listSessions (userId: string, now: number): Promise<SessionRecord[]> {
    const docs = await this.#collection.find(
      { userId, expiresAt: { $gt: new Date(now) } },
      { projection: SESSION_PROJECTION, sort: { createdAt: 1 } }
    ).toArray()
    return docs.map(sessionOf)
  }

  async deleteSession (userId: string, sessionId: string): Promise<boolean> {
    // userId in the filter: a session id of another user deletes nothing.
    const doc = await this.#collection.findOneAndDelete({ _id: sessionId, userId }, { projection: { expiresAt: 1 } })
    return doc !== null && doc.expiresAt.getTime() > this.#now()
  }

  async deleteUser (userId: string): Promise<number> {
    const live = await this.#collection.countDocuments({ userId, expiresAt: { $gt: new Date(this.#now()) } })
    await this.#collection.deleteMany({ userId })
    return live
  }

  /** Disconnect the client this store created from `url`; a host's client is left open. */
  async close (): Promise<void> {
    if (this.#ownedClient !== null) await this.#ownedClient.close()
  }
}
