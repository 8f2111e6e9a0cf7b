import type {
  CreateSessionInput,
  CreateSessionResult,
  RefreshTokenStore,
  RevocationState,
  RevocationStore,
  RotateInput,
  RotationFacts,
  SessionRecord,
  TokenFacts
} from './types.js'

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

  #isRevoked (id: string | null, kind: 't' | 's', userId: string, now: number): boolean {
    if (id === null) return false
    const until = this.#revoked.get(key(kind, userId, id))
    return until !== undefined && until > now
  }

  async check (userId: string, tokenId: string | null, sessionId: string | null): Promise<RevocationState> {
    const now = this.#now()
    return {
      tokenRevoked: this.#isRevoked(tokenId, 't', userId, now),
      sessionRevoked: this.#isRevoked(sessionId, 's', userId, now),
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

/** A presented token as a session keeps it: live (`rotatedAt` null) or rotated into `childHash`. */
interface TokenEntry {
  rotatedAt: number | null
  childHash: string | null
}

interface MemorySession extends SessionRecord {
  liveHash: string
  /** The session's tokens by hash, oldest first (a Map keeps insertion order). */
  tokens: Map<string, TokenEntry>
}

/**
 * Refresh-token store in process memory: the embedded default. Single process
 * only, and lost on restart (every user must log in again).
 */
export class MemoryRefreshTokenStore implements RefreshTokenStore {
  readonly #sessions = new Map<string, MemorySession>()
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

  /** Number of sessions currently held (expired ones until the next sweep). */
  get size (): number {
    return this.#sessions.size
  }

  /** The user's live session, or undefined (unknown, another user's, expired). */
  #live (userId: string, sessionId: string, now: number): MemorySession | undefined {
    const session = this.#sessions.get(sessionId)
    return session !== undefined && session.userId === userId && session.expiresAt > now ? session : undefined
  }

  #liveSessionsOf (userId: string, now: number): MemorySession[] {
    const result: MemorySession[] = []
    for (const sessionId of this.#users.get(userId) ?? []) {
      const session = this.#live(userId, sessionId, now)
      if (session !== undefined) result.push(session)
    }
    return result
  }

  async create (input: CreateSessionInput): Promise<CreateSessionResult> {
    this.sweep(input.now)
    const { session, tokenHash, now, maxSessions } = input
    if (this.#sessions.has(session.sessionId)) throw new Error('session id already stored')
    // Least recently used first: those beyond the limit, counting the new session, end.
    const live = this.#liveSessionsOf(session.userId, now).sort((a, b) => a.lastUsedAt - b.lastUsedAt)
    const evicted = live.slice(0, Math.max(0, live.length - maxSessions + 1)).map(old => old.sessionId)
    for (const sessionId of evicted) this.#delete(sessionId)
    if (session.expiresAt <= now) return { evicted }
    this.#sessions.set(session.sessionId, { ...session, liveHash: tokenHash, tokens: new Map([[tokenHash, { rotatedAt: null, childHash: null }]]) })
    let sessions = this.#users.get(session.userId)
    if (sessions === undefined) {
      sessions = new Set()
      this.#users.set(session.userId, sessions)
    }
    sessions.add(session.sessionId)
    return { evicted }
  }

  #facts (session: MemorySession, entry: TokenEntry): TokenFacts {
    const { liveHash, tokens: _tokens, ...record } = session
    return { session: record, rotatedAt: entry.rotatedAt, childHash: entry.childHash, liveHash }
  }

  async find (userId: string, sessionId: string, hash: string, now: number): Promise<TokenFacts | null> {
    const session = this.#live(userId, sessionId, now)
    const entry = session?.tokens.get(hash)
    return session === undefined || entry === undefined ? null : this.#facts(session, entry)
  }

  async rotate (input: RotateInput): Promise<RotationFacts | null> {
    // Everything below runs synchronously: no other call can interleave, so rotation is atomic.
    const session = this.#live(input.userId, input.sessionId, input.now)
    const entry = session?.tokens.get(input.hash)
    if (session === undefined || entry === undefined) return null
    if (session.liveHash !== input.hash) return { ...this.#facts(session, entry), rotated: false }
    entry.rotatedAt = input.now
    entry.childHash = input.childHash
    session.tokens.set(input.childHash, { rotatedAt: null, childHash: null })
    // Keep the live token and at most `keepRotated` rotated ones, dropping the oldest.
    while (session.tokens.size > input.keepRotated + 1) session.tokens.delete(session.tokens.keys().next().value as string)
    session.liveHash = input.childHash
    session.lastUsedAt = input.now
    session.expiresAt = input.childExpiresAt
    session.userAgent = input.userAgent ?? session.userAgent
    session.ip = input.ip ?? session.ip
    return { ...this.#facts(session, { rotatedAt: null, childHash: null }), rotated: true }
  }

  async listSessions (userId: string, now: number): Promise<SessionRecord[]> {
    return this.#liveSessionsOf(userId, now)
      .map(session => this.#facts(session, session.tokens.get(session.liveHash) as TokenEntry).session)
      .sort((a, b) => a.createdAt - b.createdAt)
  }

  #delete (sessionId: string): void {
    const session = this.#sessions.get(sessionId)
    if (session === undefined) return
    this.#sessions.delete(sessionId)
    const sessions = this.#users.get(session.userId)
    sessions?.delete(sessionId)
    if (sessions?.size === 0) this.#users.delete(session.userId)
  }

  async deleteSession (userId: string, sessionId: string): Promise<boolean> {
    const session = this.#sessions.get(sessionId)
    if (session === undefined || session.userId !== userId) return false
    this.#delete(sessionId)
    return session.expiresAt > this.#now()
  }

  async deleteUser (userId: string): Promise<number> {
    const live = this.#liveSessionsOf(userId, this.#now()).length
    for (const sessionId of [...(this.#users.get(userId) ?? [])]) this.#delete(sessionId)
    return live
  }

  /** Drop expired sessions now (also done by writes, at most once per `sweepInterval`). */
  sweep (now = this.#now(), force = false): void {
    if (!force && now - this.#lastSweep < this.#sweepInterval) return
    this.#lastSweep = now
    for (const [sessionId, session] of this.#sessions) {
      if (session.expiresAt <= now) this.#delete(sessionId)
    }
  }

  async close (): Promise<void> {
    this.#sessions.clear()
    this.#users.clear()
  }
}
