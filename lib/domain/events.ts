import { EventEmitter } from 'node:events'

/** Why a session ended. */
export type SessionEndReason = 'logout' | 'revoked' | 'reuse' | 'stale-version' | 'evicted'

/** Events emitted on `fastify.revocableJwt.events`. */
export interface RevocableJwtEvents {
  /** A rotated refresh token was presented after the grace window; its session was revoked. */
  refreshTokenReused: [{ userId: string, sessionId: string, ip: string | null, userAgent: string | null }]
  /** A session was revoked: logout, a revoke from the session list, reuse, a stale version, or evicted by a newer login beyond the session limit. */
  sessionRevoked: [{ userId: string, sessionId: string, reason: SessionEndReason }]
  /** The user's token version was bumped (logout-all, password change). */
  tokenVersionBumped: [{ userId: string, version: number }]
}

/**
 * The package's events. `publish` never throws: a failing listener is reported to
 * `onListenerError` instead, so that it cannot turn a completed revocation into an error.
 */
export class AuthEvents extends EventEmitter<RevocableJwtEvents> {
  readonly #onListenerError: (err: unknown, event: string) => void

  constructor (onListenerError: (err: unknown, event: string) => void) {
    super()
    this.#onListenerError = onListenerError
  }

  publish<K extends keyof RevocableJwtEvents> (event: K, ...args: RevocableJwtEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: RevocableJwtEvents[K]) => boolean)(event, ...args)
    } catch (err) {
      this.#onListenerError(err, event)
    }
  }
}
