/**
 * The store interfaces: what an adapter must do, and nothing it must decide. A store
 * reports what it found and what it did (the token's record, whether this call rotated
 * it, the session's live token); the domain (`lib/domain/`) decides what that means.
 * Every adapter passes the contract suite of `fastify-revocable-jwt/testing`.
 */

/** What `RevocationStore.check` found for one access token, in one round trip. */
export interface RevocationState {
  /** The token's `jti` has been revoked (false when no `jti` was asked about). */
  tokenRevoked: boolean
  /** The token's session has been revoked (false when no session was asked about). */
  sessionRevoked: boolean
  /** The user's current token version (0 when never bumped). */
  version: number
}

/**
 * Holds revoked access-token ids, revoked session ids (each until the moment the
 * tokens they revoke would expire anyway) and the per-user token versions.
 * Revocations are keyed by user: one user can never revoke another's ids.
 */
export interface RevocationStore {
  /**
   * Answer the three questions of one protected request in one round trip. A `null`
   * id is not asked about (a token without a `jti` or a session).
   */
  check (userId: string, tokenId: string | null, sessionId: string | null): Promise<RevocationState>
  /** Revoke one access token until `expiresAt` (ms since the epoch); nothing is kept for a time already past. */
  revokeToken (userId: string, tokenId: string, expiresAt: number): Promise<void>
  /** Revoke every access token of a session until `expiresAt` (ms since the epoch). */
  revokeSession (userId: string, sessionId: string, expiresAt: number): Promise<void>
  /** The user's current token version (0 when never bumped). */
  getTokenVersion (userId: string): Promise<number>
  /** Increment the user's token version atomically and return the new one. */
  bumpTokenVersion (userId: string): Promise<number>
  /** Prepare the store (connect, create tables or indexes); called once when the app is ready. */
  init? (): Promise<void>
  /** Release what the store opened itself. */
  close? (): Promise<void>
}

/** A session: one login, the rotation chain of its refresh tokens, and whose it is. */
export interface SessionRecord {
  sessionId: string
  userId: string
  /** The user's token version when the session began. */
  version: number
  /** When the session began (the login), ms since the epoch. */
  createdAt: number
  /** When the session last rotated its refresh token, ms since the epoch. */
  lastUsedAt: number
  /** When the session's live refresh token expires, ms since the epoch. */
  expiresAt: number
  userAgent: string | null
  ip: string | null
}

/** Input of `RefreshTokenStore.create`. */
export interface CreateSessionInput {
  /** The new session; its live refresh token is `tokenHash`. */
  session: SessionRecord
  /** SHA-256 of the session's first refresh token, base64url: the only form in which tokens are stored. */
  tokenHash: string
  /** Current time, ms since the epoch. */
  now: number
  /**
   * Live sessions a user may hold. When the user already holds this many, the least
   * recently used ones are deleted so that, with the new one, there are `maxSessions`.
   */
  maxSessions: number
  /**
   * Only for a store with `readsTokenVersions`: record the user's current token version
   * (read in the same atomic step) instead of `session.version`, and report it.
   */
  versionFromStore?: boolean
}

/** What `RefreshTokenStore.create` did. */
export interface CreateSessionResult {
  /** Ids of the user's sessions deleted to make room, least recently used first. */
  evicted: string[]
  /** The version recorded, when `versionFromStore` asked the store to read it. */
  version?: number
}

/** Input of `RefreshTokenStore.rotate`. */
export interface RotateInput {
  userId: string
  sessionId: string
  /** Hash of the presented token. */
  hash: string
  /** Hash of the child to store when the presented token is the session's live one. */
  childHash: string
  /** Current time, ms since the epoch. */
  now: number
  /** Expiry of the child (and so of the session), ms since the epoch. */
  childExpiresAt: number
  /** The client that rotates, recorded on the session when not null. */
  userAgent: string | null
  ip: string | null
  /** Rotated tokens a session keeps (for reuse detection); older ones are forgotten. */
  keepRotated: number
}

/** What a store knows about one presented refresh token of a live session. */
export interface TokenFacts {
  /** The session, as it stands now (after this call's rotation, if there was one). */
  session: SessionRecord
  /** When the presented token was rotated before this call, ms since the epoch; null when it was the live token. */
  rotatedAt: number | null
  /** The child stored when the presented token was rotated before this call; null when it was the live token. */
  childHash: string | null
  /** Hash of the session's live (newest, unrotated) token now. */
  liveHash: string
}

/** What `RefreshTokenStore.rotate` found and did. */
export interface RotationFacts extends TokenFacts {
  /** This call rotated the presented token: it was live, and `childHash` is now the session's live token. */
  rotated: boolean
  /** The user's current token version, read in the same atomic step (stores with `readsTokenVersions` only). */
  currentVersion?: number
}

/**
 * Holds sessions and the hashes of their refresh tokens. A token that is unknown,
 * of another user or session, or of an expired or deleted session, does not exist
 * (`null`): expiry is a fact the store applies on every read.
 */
export interface RefreshTokenStore {
  /**
   * The store also sees the users' token versions (the Redis store on the same client and
   * prefix as the Redis revocation store): a login and a refresh then read the version in
   * the same atomic step as the write, one round trip instead of two.
   */
  readonly readsTokenVersions?: boolean
  /**
   * With `readsTokenVersions`: the revocation store whose versions this store reads. The
   * versions are read in the store's own steps only when the app's revocation store is
   * this one; paired with another, the domain reads them from that one instead.
   */
  readonly tokenVersionsOf?: RevocationStore
  /** Store a new session with its first token; evict the least recently used sessions beyond `maxSessions`. A session id already stored is refused. */
  create (input: CreateSessionInput): Promise<CreateSessionResult>
  /** Read what is stored about a presented token, changing nothing. */
  find (userId: string, sessionId: string, hash: string, now: number): Promise<TokenFacts | null>
  /**
   * Atomically: when the presented token is the session's live token, mark it rotated
   * (now, `childHash`) and make `childHash` the live token, with the child's expiry,
   * forgetting rotated tokens beyond `keepRotated`; otherwise change nothing. Either
   * way, report the facts. Concurrent calls for one token rotate it exactly once.
   */
  rotate (input: RotateInput): Promise<RotationFacts | null>
  /** The user's live sessions, oldest first. */
  listSessions (userId: string, now: number): Promise<SessionRecord[]>
  /** Delete one session of this user with every token of it; false when it had none. */
  deleteSession (userId: string, sessionId: string): Promise<boolean>
  /** Delete every session of the user; returns how many live sessions were ended. */
  deleteUser (userId: string): Promise<number>
  /** Prepare the store (connect, create tables or indexes); called once when the app is ready. */
  init? (): Promise<void>
  /** Release what the store opened itself. */
  close? (): Promise<void>
}
