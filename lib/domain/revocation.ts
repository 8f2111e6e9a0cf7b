import type { RevocationState, RevocationStore } from '../stores/types.js'
import { AuthStoreUnavailableError } from '../errors.js'
import type { AuthEvents } from './events.js'
import { guardPromise, guardStore } from './store-guard.js'

/** The app's own token versions, kept on its user records instead of the revocation store. */
export interface TokenVersionSource {
  /** The user's current version. Called on every checked request, login and refresh. */
  get: (userId: string) => number | Promise<number>
  /** Increment the user's version and return the new one. */
  bump: (userId: string) => number | Promise<number>
}

export interface RevocationOptions {
  store: RevocationStore
  /** A store call (or a version hook) slower than this fails with 503. */
  storeTimeoutMs: number
  /** Versions from the app's records instead of the store. */
  versions?: TokenVersionSource
  events: AuthEvents
}

/** A version as stored: a non-negative safe integer, or the store is broken (503, fail closed). */
function checkVersion (version: unknown): number {
  if (!Number.isSafeInteger(version) || (version as number) < 0) {
    throw new AuthStoreUnavailableError({ cause: new TypeError(`a token version must be a non-negative integer, got ${String(version)}`) })
  }
  return version as number
}

function isCurrentState (state: RevocationState, version: number | null): boolean {
  return !state.tokenRevoked && !state.sessionRevoked && (version === null || checkVersion(state.version) === version)
}

/**
 * Revocation: revoked token ids, revoked sessions and per-user token versions, checked
 * together in one store call per request. Every store call has a deadline and fails
 * closed: an unreachable store is `AuthStoreUnavailableError` (503) with the cause kept.
 */
export class Revocation {
  readonly store: RevocationStore
  readonly #timeoutMs: number
  #versions: TokenVersionSource | undefined
  readonly #events: AuthEvents
  #checksDenylist = false
  #checksVersions = false

  constructor (options: RevocationOptions) {
    this.store = options.store
    this.#timeoutMs = options.storeTimeoutMs
    this.#versions = options.versions
    this.#events = options.events
  }

  /** How long a store call may take before it fails with 503, ms. */
  get storeTimeoutMs (): number {
    return this.#timeoutMs
  }

  /** Versions come from the app's own hooks: reading one is a call into the app. */
  get versionsFromApp (): boolean {
    return this.#versions !== undefined
  }

  /** Which checks `isCurrentToken` makes: revoked ids (the denylist), the version, or both. */
  get checks (): { denylist: boolean, versions: boolean } {
    return { denylist: this.#checksDenylist, versions: this.#checksVersions }
  }

  /** Make `isCurrentToken` refuse revoked token ids and sessions. */
  checkDenylist (): void {
    this.#checksDenylist = true
  }

  /** Make `isCurrentToken` refuse stale versions, read from `source` (the app's records) when given. */
  checkVersions (source?: TokenVersionSource): void {
    this.#checksVersions = true
    if (source !== undefined) this.#versions = source
  }

  /** `isCurrent` with the checks turned on: what a protected request must pass. */
  isCurrentToken (userId: string, tokenId: string | null, sessionId: string | null, version: number): Promise<boolean> {
    const denylist = this.#checksDenylist
    return this.isCurrent(userId, denylist ? tokenId : null, denylist ? sessionId : null, this.#checksVersions ? version : null)
  }

  /** Run a store (or app hook) call with the deadline; failures become 503 with their cause. */
  guard<T> (operation: () => T | Promise<T>): Promise<T> {
    return guardStore(operation as () => Promise<T>, this.#timeoutMs)
  }

  /**
   * Whether a token is still current: its `jti` and session not revoked and, when
   * `version` is given, the user's version equal to it. One store round trip (two
   * calls at once when versions come from the app).
   */
  isCurrent (userId: string, tokenId: string | null, sessionId: string | null, version: number | null): Promise<boolean> {
    if (version !== null && this.#versions !== undefined) return this.#isCurrentWithAppVersion(userId, tokenId, sessionId, version)
    return this.#check(userId, tokenId, sessionId).then(state => isCurrentState(state, version))
  }

  async #isCurrentWithAppVersion (userId: string, tokenId: string | null, sessionId: string | null, version: number): Promise<boolean> {
    const [state, current] = await Promise.all([
      tokenId === null && sessionId === null ? null : this.#check(userId, tokenId, sessionId),
      this.getVersion(userId)
    ])
    return (state === null || isCurrentState(state, null)) && current === version
  }

  // Started here and handed to guardPromise, without a closure per request: this is
  // the hot path. A store that throws instead of rejecting is unavailable too.
  #check (userId: string, tokenId: string | null, sessionId: string | null): Promise<RevocationState> {
    let pending: Promise<RevocationState>
    try {
      pending = this.store.check(userId, tokenId, sessionId)
    } catch (err) {
      pending = Promise.reject(err)
    }
    return guardPromise(pending, this.#timeoutMs)
  }

  /** Revoke one access token until `expiresAt` (ms): exactly as long as it could still be accepted. */
  async revokeToken (userId: string, tokenId: string, expiresAt: number): Promise<void> {
    await this.guard(() => this.store.revokeToken(userId, tokenId, expiresAt))
  }

  /** Revoke every access token of a session until `until` (ms). */
  async revokeSession (userId: string, sessionId: string, until: number): Promise<void> {
    await this.guard(() => this.store.revokeSession(userId, sessionId, until))
  }

  /** The user's current token version, from the app's hook or the store. */
  async getVersion (userId: string): Promise<number> {
    const versions = this.#versions
    return checkVersion(await this.guard(versions === undefined ? () => this.store.getTokenVersion(userId) : () => versions.get(userId)))
  }

  /** Bump the user's token version: every token of the user issued before stops. Returns the new version. */
  async bumpVersion (userId: string): Promise<number> {
    const versions = this.#versions
    const version = checkVersion(await this.guard(versions === undefined ? () => this.store.bumpTokenVersion(userId) : () => versions.bump(userId)))
    this.#events.publish('tokenVersionBumped', { userId, version })
    return version
  }
}
