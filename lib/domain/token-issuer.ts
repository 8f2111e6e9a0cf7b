import { AuthStoreUnavailableError } from '../errors.js'
import { RESERVED_CLAIMS, type AccessTokens } from './access-tokens.js'
import type { Revocation } from './revocation.js'
import type { ClientInfo, Sessions } from './sessions.js'

/** The body that a login and a refresh answer. */
export interface IssuedTokens {
  accessToken: string
  tokenType: 'Bearer'
  /** Lifetime of the access token in seconds. */
  expiresIn: number
}

/** Tokens for one session: the body for the client and the refresh token for its cookie. */
export interface SessionTokens {
  body: IssuedTokens
  refreshToken: string
  userId: string
  sessionId: string
}

/** Extra claims for a user's access tokens (the `accessTokenClaims` option). */
export type ClaimsSource = (userId: string) => Record<string, unknown> | Promise<Record<string, unknown>>

export interface TokenIssuerOptions {
  accessTokens: AccessTokens
  sessions: Sessions
  revocation: Revocation
  claims?: ClaimsSource
}

/**
 * Issues the token pair of a session: a login starts a session and signs its first
 * access token; a refresh exchanges the refresh token and signs a new access token.
 */
export class TokenIssuer {
  readonly #accessTokens: AccessTokens
  readonly #sessions: Sessions
  readonly #revocation: Revocation
  readonly #claims: ClaimsSource | undefined
  readonly #expiresIn: number
  readonly #readClaims: ((userId: string) => Promise<Record<string, unknown>>) | undefined

  constructor (options: TokenIssuerOptions) {
    this.#accessTokens = options.accessTokens
    this.#sessions = options.sessions
    this.#revocation = options.revocation
    this.#claims = options.claims
    this.#expiresIn = Math.floor(options.accessTokens.ttlMs / 1000)
    this.#readClaims = this.#claims === undefined ? undefined : (userId) => this.#claimsOf(userId)
  }

  /** The app's claims for the user; a failing or malformed answer is a 503 with its cause. */
  async #claimsOf (userId: string): Promise<Record<string, unknown>> {
    const claims = await this.#revocation.guard(() => (this.#claims as ClaimsSource)(userId))
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
      throw new AuthStoreUnavailableError({ cause: new TypeError('accessTokenClaims must return an object of claims') })
    }
    const reserved = Object.keys(claims).find(name => RESERVED_CLAIMS.has(name))
    if (reserved !== undefined) {
      throw new AuthStoreUnavailableError({ cause: new TypeError(`accessTokenClaims returned the reserved claim "${reserved}"`) })
    }
    return claims
  }

  #body (userId: string, sessionId: string, version: number, claims: Record<string, unknown> | undefined): IssuedTokens {
    return { accessToken: this.#accessTokens.sign({ userId, sessionId, version }, claims), tokenType: 'Bearer', expiresIn: this.#expiresIn }
  }

  /**
   * Start a session for a user whose credentials the app has checked. `version`: the
   * user's token version read before the credentials were (see `Sessions.start`).
   */
  async login (userId: string, client: ClientInfo, version?: number): Promise<SessionTokens> {
    // Claims first: a failing lookup must not leave a session behind.
    const claims = await this.#readClaims?.(userId)
    const session = await this.#sessions.start(userId, client, version)
    return { body: this.#body(userId, session.sessionId, session.version, claims), refreshToken: session.refreshToken, userId, sessionId: session.sessionId }
  }

  /** Exchange a refresh token for a new pair. */
  async refresh (presented: string, client: ClientInfo): Promise<SessionTokens & { outcome: 'rotated' | 'grace' }> {
    const session = await this.#sessions.refresh(presented, client, this.#readClaims)
    return {
      body: this.#body(session.userId, session.sessionId, session.version, session.prepared),
      refreshToken: session.refreshToken,
      userId: session.userId,
      sessionId: session.sessionId,
      outcome: session.outcome
    }
  }
}
