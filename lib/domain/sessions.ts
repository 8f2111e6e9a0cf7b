import type { RefreshTokenStore, RotationFacts, SessionRecord, TokenFacts } from '../stores/types.js'
import { AuthStoreUnavailableError, RefreshTokenInvalidError, RefreshTokenReusedError } from '../errors.js'
import type { AuthEvents, SessionEndReason } from './events.js'
import type { Revocation } from './revocation.js'
import { decideRotation, type RotationContext, type RotationDecision } from './rotation-policy.js'
import { deriveChildToken, hashToken, mintRefreshToken, parseRefreshToken, randomId } from './refresh-tokens.js'

/** The client a session was started or refreshed from, as recorded on the session. */
export interface ClientInfo {
  userAgent: string | null
  ip: string | null
}

export interface SessionsOptions {
  store: RefreshTokenStore
  /** Versions and session revocation. */
  revocation: Revocation
  events: AuthEvents
  /** Server key the children of rotated refresh tokens are derived with. */
  refreshTokenSecret: Buffer
  refreshTokenTtlMs: number
  refreshReuseGraceMs: number
  /** Lifetime of access tokens: a revoked session is kept revoked that long (plus `storeTimeoutMs`). */
  accessTokenTtlMs: number
  storeTimeoutMs: number
  /** Live sessions per user; the least recently used ends when a login would exceed it. */
  maxSessions: number
  /** Rotated tokens kept per session for reuse detection. */
  keepRotated: number
  now: () => number
  /** Told about a refusal worth an operator's attention (a child derived with another key). */
  warn: (message: string) => void
}

/** A session just started by a login. */
export interface StartedSession {
  userId: string
  sessionId: string
  /** The token version the session (and its access tokens) carry. */
  version: number
  /** The refresh token for the client: only its hash is stored. */
  refreshToken: string
}

/** A session whose refresh token was just exchanged. */
export interface RefreshedSession<T> extends StartedSession {
  /** `rotated`: the presented token was live; `grace`: it was rotated moments ago and the live token is answered again. */
  outcome: 'rotated' | 'grace'
  /** What `prepare` returned. */
  prepared: T
}

/**
 * Sessions: a login starts one, each refresh rotates its refresh token, logout and
 * the session list end one, logout-all ends them all. The grace / reuse / stale-version
 * decision is `decideRotation` (rotation-policy.ts); this class gathers the facts it
 * needs and carries out what it decides.
 */
export class Sessions {
  readonly store: RefreshTokenStore
  readonly #revocation: Revocation
  readonly #events: AuthEvents
  readonly #secret: Buffer
  readonly #ttlMs: number
  readonly #graceMs: number
  readonly #revokeForMs: number
  readonly #maxSessions: number
  readonly #keepRotated: number
  readonly #now: () => number
  readonly #warn: (message: string) => void
  readonly #derive = (token: string): string => deriveChildToken(token, this.#secret)

  constructor (options: SessionsOptions) {
    this.store = options.store
    this.#revocation = options.revocation
    this.#events = options.events
    this.#secret = options.refreshTokenSecret
    this.#ttlMs = options.refreshTokenTtlMs
    this.#graceMs = options.refreshReuseGraceMs
    // A revoked session must outlive every access token of it, including one minted by
    // a refresh that raced the revocation (bounded by the store timeout).
    this.#revokeForMs = options.accessTokenTtlMs + options.storeTimeoutMs
    this.#maxSessions = options.maxSessions
    this.#keepRotated = options.keepRotated
    this.#now = options.now
    this.#warn = options.warn
  }

  /**
   * Start a session for a user whose credentials the app has just checked. Give the
   * `version` read **before** the credentials were read, so that a password change
   * racing this login leaves the session stale; without it the version is read now.
   */
  async start (userId: string, client: ClientInfo, version?: number): Promise<StartedSession> {
    // A store that sees the versions reads the current one in the same step as the write.
    const fromStore = version === undefined && this.#storeReadsVersions
    const tokenVersion = version ?? (fromStore ? 0 : await this.#revocation.getVersion(userId))
    const now = this.#now()
    const sessionId = randomId()
    const refreshToken = mintRefreshToken(userId, sessionId)
    const created = await this.#revocation.guard(() => this.store.create({
      session: { sessionId, userId, version: tokenVersion, createdAt: now, lastUsedAt: now, expiresAt: now + this.#ttlMs, ...client },
      tokenHash: hashToken(refreshToken),
      now,
      maxSessions: this.#maxSessions,
      ...(fromStore && { versionFromStore: true })
    }))
    // Their refresh tokens are gone; their access tokens must stop too.
    for (const sessionId of created.evicted) await this.#endAccess(userId, sessionId, 'evicted')
    return { userId, sessionId, version: fromStore ? this.#checkedVersion(created.version) : tokenVersion, refreshToken }
  }

  /**
   * The versions are the package's own (not the app's hooks) and the refresh store reads
   * them: those of this revocation store, when it names the one it reads.
   */
  get #storeReadsVersions (): boolean {
    const of = this.store.tokenVersionsOf
    return this.store.readsTokenVersions === true && !this.#revocation.versionsFromApp && (of === undefined || of === this.#revocation.store)
  }

  #checkedVersion (version: number | undefined): number {
    if (!Number.isSafeInteger(version) || (version as number) < 0) {
      throw new AuthStoreUnavailableError({ cause: new TypeError(`the store reported the token version ${String(version)}`) })
    }
    return version as number
  }

  /**
   * Exchange a presented refresh token. `prepare(userId)` runs once the token is known
   * to be stored and before anything irreversible, so that the app's own lookups never
   * run for an id taken from an unverified cookie, and a failing lookup leaves the token
   * unrotated. Throws `RefreshTokenInvalidError` or `RefreshTokenReusedError`.
   */
  async refresh<T = undefined> (presented: string, client: ClientInfo, prepare?: (userId: string) => Promise<T>): Promise<RefreshedSession<T>> {
    const parsed = parseRefreshToken(presented)
    if (parsed === null) throw new RefreshTokenInvalidError()
    const { userId, sessionId } = parsed
    const hash = hashToken(presented)
    const now = this.#now()
    const context: RotationContext = {
      presented,
      now,
      graceMs: this.#graceMs,
      currentVersion: 0,
      keepRotated: this.#keepRotated,
      derive: this.#derive,
      hash: hashToken
    }
    const rotate = (): Promise<RotationFacts | null> => this.#revocation.guard(() => this.store.rotate({
      userId,
      sessionId,
      hash,
      childHash: hashToken(this.#derive(presented)),
      now,
      childExpiresAt: now + this.#ttlMs,
      userAgent: client.userAgent,
      ip: client.ip,
      keepRotated: this.#keepRotated
    }))

    let facts: TokenFacts | RotationFacts | null
    let prepared: T
    if (prepare !== undefined || this.#revocation.versionsFromApp) {
      // Read first: the app's hooks run only for a stored token, before the rotation.
      const found = await this.#revocation.guard(() => this.store.find(userId, sessionId, hash, now))
      if (found === null) throw new RefreshTokenInvalidError()
      ;[context.currentVersion, prepared] = await Promise.all([
        this.#revocation.getVersion(userId),
        prepare === undefined ? undefined as T : this.#revocation.guard(() => prepare(userId))
      ])
      const early = decideRotation(found, context)
      facts = early.action === 'rotate' ? await rotate() : found
    } else if (this.#storeReadsVersions) {
      // One atomic step reads the version and rotates: nothing can fail in between.
      const rotated = await rotate()
      if (rotated !== null) context.currentVersion = this.#checkedVersion(rotated.currentVersion)
      facts = rotated
      prepared = undefined as T
    } else {
      // The version is read before rotating: should the read fail, the token stays
      // unrotated and the client's retry, however late, is not mistaken for reuse.
      context.currentVersion = await this.#revocation.getVersion(userId)
      facts = await rotate()
      prepared = undefined as T
    }
    return await this.#carryOut(decideRotation(facts, context), { userId, sessionId, version: context.currentVersion, prepared }, client)
  }

  async #carryOut<T> (decision: RotationDecision, session: { userId: string, sessionId: string, version: number, prepared: T }, client: ClientInfo): Promise<RefreshedSession<T>> {
    switch (decision.action) {
      case 'issue':
        return { ...session, refreshToken: decision.token, outcome: decision.outcome }
      case 'revoke':
        await this.revoke(session.userId, session.sessionId, decision.reason)
        if (decision.reason === 'reuse') {
          this.#events.publish('refreshTokenReused', { userId: session.userId, sessionId: session.sessionId, ...client })
          throw new RefreshTokenReusedError()
        }
        throw new RefreshTokenInvalidError()
      case 'refuse':
        if (decision.reason === 'child-mismatch') {
          this.#warn('fastify-revocable-jwt: a rotated refresh token does not match its stored child; is refreshTokenSecret the same on every instance?')
        }
        throw new RefreshTokenInvalidError()
      /* c8 ignore next 2 -- decideRotation answers `rotate` only for facts read before rotating, which are never carried out */
      default:
        throw new RefreshTokenInvalidError()
    }
  }

  /**
   * End one session of the user: its access tokens first (idempotent, keyed by user),
   * then its refresh tokens, so that a failure in between leaves a retry that completes.
   * False when the user had no such session.
   */
  async revoke (userId: string, sessionId: string, reason: SessionEndReason): Promise<boolean> {
    await this.#revocation.revokeSession(userId, sessionId, this.#now() + this.#revokeForMs)
    const deleted = await this.#revocation.guard(() => this.store.deleteSession(userId, sessionId))
    if (deleted || reason !== 'revoked') this.#events.publish('sessionRevoked', { userId, sessionId, reason })
    return deleted
  }

  /**
   * End a session the caller names, only if it is the user's: nothing is written for
   * an id that is not (a list of the user's sessions is bounded, so this stays cheap).
   */
  async revokeOwn (userId: string, sessionId: string): Promise<boolean> {
    const sessions = await this.list(userId)
    if (!sessions.some(session => session.sessionId === sessionId)) return false
    return await this.revoke(userId, sessionId, 'revoked')
  }

  /** Revoke the access token in hand and its session: a logout. */
  async logout (userId: string, sessionId: string, tokenId: string, tokenExpiresAt: number): Promise<void> {
    await Promise.all([
      this.#revocation.revokeToken(userId, tokenId, tokenExpiresAt),
      this.revoke(userId, sessionId, 'logout')
    ])
  }

  /** Log the user out everywhere: bump the version (every token issued before stops) and delete every session. */
  async endAll (userId: string): Promise<number> {
    const [ended] = await Promise.all([
      this.#revocation.guard(() => this.store.deleteUser(userId)),
      this.#revocation.bumpVersion(userId)
    ])
    return ended
  }

  /** The user's live sessions, oldest first. */
  async list (userId: string): Promise<SessionRecord[]> {
    return await this.#revocation.guard(() => this.store.listSessions(userId, this.#now()))
  }

  async #endAccess (userId: string, sessionId: string, reason: SessionEndReason): Promise<void> {
    await this.#revocation.revokeSession(userId, sessionId, this.#now() + this.#revokeForMs)
    this.#events.publish('sessionRevoked', { userId, sessionId, reason })
  }
}
