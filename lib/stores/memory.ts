import type {
  RefreshTokenRecord,
  RefreshTokenStore,
  RevocationState,
  RevocationStore,
  RotateInput,
  RotateResult,
  SessionRecord
} from '../../types/index.js'

/** Options of the memory stores. */
export interface MemoryStoreOptions {
  /**
   * The clock, in ms since the epoch. Tests inject one.
   * @default Date.now
   */
  now?: () => number
  /**
   * Sweep expired entries at most this often, in ms (also done lazily on reads).
   * @default 60000
   */
  sweepInterval?: number
}

export const DEFAULT_SWEEP_INTERVAL = 60_000

function checkMemoryOptions (options: MemoryStoreOptions, name: string): Required<MemoryStoreOptions> {
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new TypeError(`${name}: now must be a function`)
  const sweepInterval = options.sweepInterval ?? DEFAULT_SWEEP_INTERVAL
  if (!Number.isFinite(sweepInterval) || sweepInterval < 0) throw new RangeError(`${name}: sweepInterval must be a non-negative number of ms`)
  return { now, sweepInterval }
}

/** Revocations are keyed by user: one user can never revoke another's session id. */
function key (kind: 't' | 's', userId: string, id: string): string {
  return `${kind}\u0000${userId}\u0000${id}`
}

/**
 * Rotated tokens kept per session for reuse detection. Older ones are forgotten, so a
 * session refreshed in a loop cannot grow memory without bound; a forgotten ancestor
 * presented again is refused as invalid rather than detected as reuse.
 */
export const MAX_ROTATED_PER_SESSION = 64

/**
 * Revocation store in process memory: the embedded default. Single process only:
 * a second instance of the service does not see what this one revoked.
 * Revoked ids expire with the tokens they revoke; versions are kept.
 */
export class MemoryRevocationStore implements RevocationStore {
  readonly #revoked = new Map<string, number>()
  readonly #versions = new Map<string, number>()
  readonly #now: () => number
  readonly #sweepInterval: number
  #lastSweep: number

  constructor (options: MemoryStoreOptions = {}) {
    const { now, sweepInterval } = checkMemoryOptions(options, 'MemoryRevocationStore')
    this.#now = now
    this.#sweepInterval = sweepInterval
    this.#lastSweep = now()
  }

  /** Number of revoked token and session ids currently held. */
  get size (): number {
    return this.#revoked.size
  }

  #isRevoked (key: string, now: number): boolean {
    const until = this.#revoked.get(key)
    return until !== undefined && until > now
  }

  async check (userId: string, tokenId: string, sessionId: string): Promise<RevocationState> {
    const now = this.#now()
    return {
      tokenRevoked: this.#isRevoked(key('t', userId, tokenId), now),
      sessionRevoked: this.#isRevoked(key('s', userId, sessionId), now),
      version: this.#versions.get(userId) ?? 0
    }
  }

  #add (key: string, expiresAt: number): void {
    const now = this.#now()
    this.sweep(now)
    if (expiresAt <= now) return
    const current = this.#revoked.get(key)
    if (current === undefined || current < expiresAt) this.#revoked.set(key, expiresAt)
  }

  async revokeToken (userId: string, tokenId: string, expiresAt: number): Promise<void> {
    this.#add(key('t', userId, tokenId), expiresAt)
  }

  async revokeSession (userId: string, sessionId: string, expiresAt: number): Promise<void> {
    this.#add(key('s', userId, sessionId), expiresAt)
  }

  async getTokenVersion (userId: string): Promise<number> {
    return this.#versions.get(userId) ?? 0
  }

  async bumpTokenVersion (userId: string): Promise<number> {
    const version = (this.#versions.get(userId) ?? 0) + 1
    this.#versions.set(userId, version)
    return version
  }

  /** Drop expired entries now (also done by writes, at most once per `sweepInterval`). */
  sweep (now = this.#now(), force = false): void {
    if (!force && now - this.#lastSweep < this.#sweepInterval) return
    this.#lastSweep = now
    for (const [key, until] of this.#revoked) {
      if (until <= now) this.#revoked.delete(key)
    }
  }

  async close (): Promise<void> {
    this.#revoked.clear()
  }
}

interface SessionEntry {
  userId: string
  /** Hashes of the session's tokens, oldest first (a Set keeps insertion order). */
  hashes: Set<string>
}

/**
 * Refresh-token store in process memory: the embedded default. Single process
 * only, and lost on restart (every user must log in again).
 */
export class MemoryRefreshTokenStore implements RefreshTokenStore {
  readonly #records = new Map<string, RefreshTokenRecord>()
  readonly #sessions = new Map<string, SessionEntry>()
  readonly #users = new Map<string, Set<string>>()
  readonly #now: () => number
  readonly #sweepInterval: number
  #lastSweep: number

  constructor (options: MemoryStoreOptions = {}) {
    const { now, sweepInterval } = checkMemoryOptions(options, 'MemoryRefreshTokenStore')
    this.#now = now
    this.#sweepInterval = sweepInterval
    this.#lastSweep = now()
  }

  /** Number of refresh-token records currently held (rotated ones included). */
  get size (): number {
    return this.#records.size
  }

  #insert (record: RefreshTokenRecord): void {
    this.#records.set(record.hash, { ...record })
    let session = this.#sessions.get(record.sessionId)
    if (session === undefined) {
      session = { userId: record.userId, hashes: new Set() }
      this.#sessions.set(record.sessionId, session)
    }
    session.hashes.add(record.hash)
    let sessions = this.#users.get(record.userId)
    if (sessions === undefined) {
      sessions = new Set()
      this.#users.set(record.userId, sessions)
    }
    sessions.add(record.sessionId)
  }

  async create (record: RefreshTokenRecord): Promise<void> {
    this.sweep()
    if (this.#records.has(record.hash)) throw new Error('refresh token hash already stored')
    this.#insert(record)
  }

  async rotate (input: RotateInput): Promise<RotateResult> {
    // Everything below runs synchronously: no other call can interleave, so rotation is atomic.
    const record = this.#records.get(input.hash)
    if (record === undefined || record.userId !== input.userId || record.expiresAt <= input.now) {
      return { outcome: 'not-found' }
    }
    if (record.rotatedAt !== null) {
      const outcome = input.now - record.rotatedAt <= input.graceMs ? 'grace' : 'reused'
      return { outcome, record: { ...record } }
    }
    record.rotatedAt = input.now
    record.childHash = input.childHash
    this.#forgetOldAncestors(record.sessionId)
    this.#insert({
      ...record,
      hash: input.childHash,
      createdAt: input.now,
      expiresAt: input.childExpiresAt,
      lastUsedAt: input.now,
      userAgent: input.userAgent ?? record.userAgent,
      ip: input.ip ?? record.ip,
      rotatedAt: null,
      childHash: null
    })
    return { outcome: 'rotated', record: { ...record } }
  }

  #forgetOldAncestors (sessionId: string): void {
    const session = this.#sessions.get(sessionId) as SessionEntry
    // The newest (unrotated) token is always last; only rotated ancestors are dropped.
    while (session.hashes.size > MAX_ROTATED_PER_SESSION) {
      const oldest = session.hashes.values().next().value as string
      session.hashes.delete(oldest)
      this.#records.delete(oldest)
    }
  }

  async listSessions (userId: string, now: number): Promise<SessionRecord[]> {
    const result: SessionRecord[] = []
    for (const sessionId of this.#users.get(userId) ?? []) {
      const session = this.#sessions.get(sessionId) as SessionEntry
      for (const hash of session.hashes) {
        const record = this.#records.get(hash) as RefreshTokenRecord
        if (record.rotatedAt === null && record.expiresAt > now) {
          result.push({
            sessionId,
            userId,
            createdAt: record.sessionCreatedAt,
            lastUsedAt: record.lastUsedAt,
            expiresAt: record.expiresAt,
            userAgent: record.userAgent,
            ip: record.ip
          })
          break
        }
      }
    }
    return result.sort((a, b) => a.createdAt - b.createdAt)
  }

  #deleteSession (sessionId: string): void {
    const session = this.#sessions.get(sessionId)
    if (session === undefined) return
    for (const hash of session.hashes) this.#records.delete(hash)
    this.#sessions.delete(sessionId)
    const sessions = this.#users.get(session.userId)
    sessions?.delete(sessionId)
    if (sessions?.size === 0) this.#users.delete(session.userId)
  }

  async deleteSession (userId: string, sessionId: string): Promise<boolean> {
    const session = this.#sessions.get(sessionId)
    if (session === undefined || session.userId !== userId) return false
    this.#deleteSession(sessionId)
    return true
  }

  async deleteUser (userId: string): Promise<number> {
    const sessions = [...(this.#users.get(userId) ?? [])]
    for (const sessionId of sessions) this.#deleteSession(sessionId)
    return sessions.length
  }

  /** Drop expired records now (also done by writes, at most once per `sweepInterval`). */
  sweep (now = this.#now(), force = false): void {
    if (!force && now - this.#lastSweep < this.#sweepInterval) return
    this.#lastSweep = now
    for (const [hash, record] of this.#records) {
      if (record.expiresAt > now) continue
      this.#records.delete(hash)
      const session = this.#sessions.get(record.sessionId) as SessionEntry
      session.hashes.delete(hash)
      if (session.hashes.size === 0) {
        this.#sessions.delete(record.sessionId)
        const sessions = this.#users.get(record.userId)
        sessions?.delete(record.sessionId)
        if (sessions?.size === 0) this.#users.delete(record.userId)
      }
    }
  }

  async close (): Promise<void> {
    this.#records.clear()
    this.#sessions.clear()
    this.#users.clear()
  }
}
