/**
 * The public type contract of fastify-revocable-jwt: options, store interfaces,
 * claims and the `declare module 'fastify'` augmentation. Types only, no runtime.
 */
import type { EventEmitter } from 'node:events'
import type { RedisOptions } from 'ioredis'

/**
 * A duration: a number of seconds, or a string of digits with an optional unit
 * `s`, `m`, `h` or `d` (`900`, `900s`, `15m`, `7d`).
 */
export type Duration = number | string

/** A JWT algorithm accepted for access tokens. */
export type AccessTokenAlgorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA'

/** Key material: a shared secret (HMAC) or a PEM key. */
export type KeyMaterial = string | Buffer

/** One signing/verification key, selected by `kid` during key rotation. */
export interface AccessTokenKey {
  /** The key id written into the JWT header. */
  kid: string
  /** HMAC secret (HS* algorithms, at least 32 bytes) or the PEM private key (asymmetric algorithms). Omit on keys that only verify. */
  secret?: KeyMaterial
  /** PEM public key (asymmetric algorithms); for HMAC leave it out, `secret` verifies. */
  publicKey?: KeyMaterial
}

/** The claims of an access token issued by this package. */
export interface AccessTokenClaims {
  /** The user id. */
  sub: string
  /** The session id; one per login, shared by every access and refresh token of that session. */
  sid: string
  /** The unique token id (128 random bits, base64url). */
  jti: string
  /** The user's token version when the token was issued. */
  ver: number
  /** Issued at, seconds since the epoch. */
  iat: number
  /** Expires at, seconds since the epoch. */
  exp: number
  iss?: string
  aud?: string | string[]
  /** Extra claims from the `accessTokenClaims` option. */
  [claim: string]: unknown
}

/** What `fastify.authenticate` puts on `request.auth` after a successful check. */
export interface AuthContext {
  /** The `sub` claim. */
  userId: string
  /** The `sid` claim. */
  sessionId: string
  /** The `jti` claim. */
  tokenId: string
  /** The `ver` claim. */
  version: number
  /** When the access token expires, in milliseconds since the epoch. */
  expiresAt: number
  /** Every claim of the verified token. */
  claims: AccessTokenClaims
}

/** The user an access/refresh token pair is issued to. */
export interface TokenSubject {
  /** The user id, written as `sub`. Any non-empty string of at most 128 bytes (UTF-8). Extra claims come from the `accessTokenClaims` option. */
  id: string
}

/** The body that `issueTokens` and the refresh route return. */
export interface IssuedTokens {
  accessToken: string
  tokenType: 'Bearer'
  /** Lifetime of the access token in seconds. */
  expiresIn: number
}

/** What `revocationStore.check` answers: everything `fastify.authenticate` needs, in one call. */
export interface RevocationState {
  /** The access token's `jti` has been revoked. */
  tokenRevoked: boolean
  /** The access token's session has been revoked. */
  sessionRevoked: boolean
  /** The user's current token version (0 when never bumped). */
  version: number
}

/**
 * Holds revoked access-token ids, revoked session ids (each until the moment the
 * tokens they revoke would expire anyway) and the per-user token versions.
 * Adapters: memory (single process), Redis.
 */
export interface RevocationStore {
  /** Answer all three questions of one protected request in one round trip. */
  check (userId: string, tokenId: string, sessionId: string): Promise<RevocationState>
  /** Revoke one access token until `expiresAt` (ms since the epoch). */
  revokeToken (userId: string, tokenId: string, expiresAt: number): Promise<void>
  /** Revoke every access token of a session until `expiresAt` (ms since the epoch). */
  revokeSession (userId: string, sessionId: string, expiresAt: number): Promise<void>
  /** The user's current token version (0 when never bumped). */
  getTokenVersion (userId: string): Promise<number>
  /** Increment the user's token version and return the new one. */
  bumpTokenVersion (userId: string): Promise<number>
  /** Prepare the store (connect, create indexes, load scripts); called once when the app is ready. */
  init? (): Promise<void>
  /** Release what the store opened itself. */
  close? (): Promise<void>
}

/** One stored refresh token. Only the hash of the token is ever stored. */
export interface RefreshTokenRecord {
  /** SHA-256 of the token, base64url. */
  hash: string
  sessionId: string
  userId: string
  /** The user's token version when the session was created. */
  version: number
  /** When the session (login) began, ms since the epoch. */
  sessionCreatedAt: number
  /** When this token was minted, ms since the epoch. */
  createdAt: number
  /** When this token stops being accepted, ms since the epoch. */
  expiresAt: number
  /** When the session last refreshed, ms since the epoch. */
  lastUsedAt: number
  userAgent: string | null
  ip: string | null
  /** When this token was rotated (exchanged for its child), or null while it is the session's newest. */
  rotatedAt: number | null
  /** Hash of the child minted by the rotation, or null. */
  childHash: string | null
}

/** Input of `refreshTokenStore.rotate`. */
export interface RotateInput {
  userId: string
  /** Hash of the presented token. */
  hash: string
  /** Hash of the child token (derived deterministically from the presented one). */
  childHash: string
  /** Expiry of the child, ms since the epoch. */
  childExpiresAt: number
  /** Current time, ms since the epoch. */
  now: number
  /** How long after its rotation a token may be presented again and yield the same child, in ms. */
  graceMs: number
  userAgent: string | null
  ip: string | null
}

/**
 * The outcome of a rotation:
 * - `rotated`: the token was current; its child is now stored;
 * - `grace`: the token was rotated less than `graceMs` ago; the same child stands;
 * - `reused`: the token was rotated longer ago: treat it as stolen;
 * - `not-found`: unknown, expired or deleted.
 */
export type RotateResult =
  | { outcome: 'rotated' | 'grace' | 'reused', record: RefreshTokenRecord }
  | { outcome: 'not-found' }

/** A live session as listed by `refreshTokenStore.listSessions`. */
export interface SessionRecord {
  sessionId: string
  userId: string
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  userAgent: string | null
  ip: string | null
}

/**
 * Holds hashed refresh tokens, grouped by session (a rotation family) and user.
 * Adapters: memory (single process), Redis, MongoDB.
 */
export interface RefreshTokenStore {
  /** Store the first token of a new session. */
  create (record: RefreshTokenRecord): Promise<void>
  /** Rotate atomically: concurrent calls for one token never store two different children. */
  rotate (input: RotateInput): Promise<RotateResult>
  /** The newest unexpired token of each live session of the user. */
  listSessions (userId: string, now: number): Promise<SessionRecord[]>
  /** Delete every token of one session of this user; false when there was none. */
  deleteSession (userId: string, sessionId: string): Promise<boolean>
  /** Delete every token of the user; returns how many sessions were ended. */
  deleteUser (userId: string): Promise<number>
  /** Prepare the store (connect, create indexes, load scripts); called once when the app is ready. */
  init? (): Promise<void>
  /** Release what the store opened itself. */
  close? (): Promise<void>
}

/** Options of the refresh cookie. */
export interface RefreshCookieOptions {
  /**
   * The cookie name.
   * @default 'refresh_token'
   */
  name?: string
  /**
   * Send the cookie only over HTTPS. Browsers accept `Secure` cookies from
   * `http://localhost`; turn this off only for other plain-http development hosts.
   * @default true
   */
  secure?: boolean
  /**
   * The cookie's `Domain` attribute; leave unset to bind it to the exact host.
   * @default undefined
   */
  domain?: string
}

/**
 * Where the Redis stores get their client: the app's @fastify/redis instance when it
 * has registered one (default or `namespace`), otherwise one that the plugin registers
 * through @fastify/redis from `url` and `clientOptions` (and @fastify/redis closes).
 */
export interface RevocableJwtRedisOptions {
  /**
   * The @fastify/redis namespace to reuse (or to register under when the app has none).
   * @default undefined (the default instance, `fastify.redis`)
   */
  namespace?: string
  /**
   * The Redis URL (`redis://`, `rediss://`) of the client registered when the app has none.
   * Refused when the app has registered one: its client is used as it is.
   * @default undefined
   */
  url?: string
  /**
   * ioredis options of the client registered when the app has none, applied over the
   * fail-fast defaults (`enableOfflineQueue: false`, `maxRetriesPerRequest: 1`,
   * `commandTimeout` = `storeTimeout`, reconnection every 100 ms to 1 s).
   * @default {}
   */
  clientOptions?: RedisOptions
  /**
   * Prefix of every key the Redis stores write; no `{` or `}`.
   * @default 'rjwt:'
   */
  keyPrefix?: string
}

/** Options shared by every plugin of the package (read once, by the core plugin). */
export interface RevocableJwtCoreOptions {
  /**
   * HMAC secret (string or Buffer of at least 32 bytes) for HS* algorithms, or
   * `{ private, public }` PEM keys for RS/PS/ES/EdDSA. Give `keys` instead to rotate keys by `kid`.
   */
  secret?: KeyMaterial | { private: KeyMaterial, public: KeyMaterial }
  /**
   * Keys selected by the `kid` header: the first one signs (it must have a `secret`),
   * all of them verify. Mutually exclusive with `secret`. Set `refreshTokenSecret`
   * explicitly when rotating keys, or rotated refresh tokens change with `keys[0]`.
   */
  keys?: AccessTokenKey[]
  /**
   * The one algorithm access tokens are signed and verified with.
   * @default 'HS256'
   */
  algorithm?: AccessTokenAlgorithm
  /**
   * `iss` written into and required of access tokens.
   * @default undefined
   */
  issuer?: string
  /**
   * `aud` written into and required of access tokens.
   * @default undefined
   */
  audience?: string
  /**
   * The `typ` header of access tokens (RFC 8725 §3.11, RFC 9068); any other value is refused.
   * @default 'at+jwt'
   */
  tokenType?: string
  /**
   * Lifetime of access tokens.
   * @default '15m'
   */
  accessTokenTtl?: Duration
  /**
   * Lifetime of a refresh token; each rotation mints a child with a full lifetime.
   * @default '7d'
   */
  refreshTokenTtl?: Duration
  /**
   * How long a rotated refresh token may be presented again and still yield the same child
   * (two tabs refreshing at once). After it, a presentation is treated as theft.
   * @default '10s'
   */
  refreshReuseGrace?: Duration
  /**
   * Server key (at least 32 bytes) for deriving a rotated refresh token's child with HMAC-SHA256.
   * Every instance of a service must share it.
   * @default derived from `secret` with HKDF when `secret` is an HMAC secret; required otherwise
   */
  refreshTokenSecret?: KeyMaterial
  /** Refresh cookie options. */
  cookie?: RefreshCookieOptions
  /**
   * The route prefix of the refresh routes; also the cookie's `Path`.
   * @default '/auth'
   */
  prefix?: string
  /**
   * Origins (`scheme://host[:port]`) besides the service's own that may call the
   * cookie-authenticated routes (refresh, logout).
   * @default []
   */
  allowedOrigins?: string[]
  /**
   * Keep revocation and refresh tokens in Redis, shared by every instance: a Redis URL,
   * or `{ namespace, url, clientOptions, keyPrefix }`. Stores not given explicitly
   * default to the Redis adapters.
   * @default undefined (memory stores)
   */
  redis?: string | RevocableJwtRedisOptions
  /**
   * Where revoked token ids, revoked sessions and token versions live.
   * @default a Redis store when `redis` is set, else a new memory store (single process only)
   */
  revocationStore?: RevocationStore
  /**
   * Where hashed refresh tokens live.
   * @default a Redis store when `redis` is set, else a new memory store (single process only)
   */
  refreshTokenStore?: RefreshTokenStore
  /**
   * Give up on a store call after this long and answer `503 AUTH_STORE_UNAVAILABLE`.
   * @default '2s'
   */
  storeTimeout?: Duration
  /**
   * Remember this many verified access tokens (by their exact text, each until its
   * `exp`) so that a token seen again skips the signature check; size it to the access
   * tokens live at once (about 700 bytes each). Revocation checks are never cached.
   * 0 turns the cache off.
   * @default 10000
   */
  verifyCacheSize?: number
  /**
   * Read the user's token version from the app's own user record instead of the
   * revocation store. Called on every authenticated request, login and refresh.
   * Give `bumpTokenVersion` with it.
   * @default undefined
   */
  getTokenVersion?: (userId: string) => Promise<number>
  /**
   * Increment the token version on the app's own user record and return the new one
   * (logout-all, password change, `fastify.bumpTokenVersion`). Goes with `getTokenVersion`.
   * @default undefined
   */
  bumpTokenVersion?: (userId: string) => Promise<number>
  /**
   * Extra claims for every access token of a user, at login and at each refresh (so a
   * role change shows at the next refresh). Reserved claims (`sub`, `sid`, `jti`, `ver`,
   * `iat`, `exp`, `nbf`, `iss`, `aud`) are refused.
   * @default undefined
   */
  accessTokenClaims?: (userId: string) => Record<string, unknown> | Promise<Record<string, unknown>>
  /**
   * The clock, in ms since the epoch. Tests inject one.
   * @default Date.now
   */
  now?: () => number
}

/** Options of the refresh-route plugin. */
export interface RefreshRoutesOptions {
  /**
   * Register `POST {prefix}/logout`.
   * @default true
   */
  logout?: boolean
  /**
   * Register `POST {prefix}/logout-all`.
   * @default true
   */
  logoutAll?: boolean
  /**
   * Register `GET {prefix}/sessions` and `DELETE {prefix}/sessions/:id`.
   * @default true
   */
  sessions?: boolean
}

/** Options of the umbrella plugin: the core options plus those of the refresh routes. */
export interface RevocableJwtOptions extends RevocableJwtCoreOptions {
  /** Which routes besides `POST {prefix}/refresh` to register. */
  routes?: RefreshRoutesOptions
}

/** Events emitted on `fastify.revocableJwt.events`. */
export interface RevocableJwtEvents {
  /** A rotated refresh token was presented after the grace window; the session was revoked. */
  refreshTokenReused: [{ userId: string, sessionId: string, ip: string | null, userAgent: string | null }]
  /** A session was revoked (logout, session revoke, reuse). */
  sessionRevoked: [{ userId: string, sessionId: string, reason: 'logout' | 'revoked' | 'reuse' | 'stale-version' }]
  /** The user's token version was bumped (logout-all, password change). */
  tokenVersionBumped: [{ userId: string, version: number }]
}

/** The `fastify.revocableJwt` namespace. */
export interface RevocableJwtNamespace {
  /** The normalised options in force. */
  readonly options: Readonly<NormalizedOptions>
  readonly revocationStore: RevocationStore
  readonly refreshTokenStore: RefreshTokenStore
  /** Emits `refreshTokenReused`, `sessionRevoked`, `tokenVersionBumped`. */
  readonly events: EventEmitter<RevocableJwtEvents>
  /** Verify an access token's signature, algorithm, `typ`, issuer, audience and shape (no revocation check). */
  verifyAccessToken (token: string): AccessTokenClaims
  /** Revoke every token of one session of the user; false (and nothing revoked for anyone else) when the session was not the user's. */
  revokeSession (userId: string, sessionId: string, reason?: 'logout' | 'revoked'): Promise<boolean>
  /** Log the user out everywhere: bump the token version and delete every refresh token. */
  logoutAll (userId: string): Promise<number>
  /** The live sessions of the user. */
  listSessions (userId: string): Promise<SessionRecord[]>
}

/** Options after validation and normalisation (durations in ms). */
export interface NormalizedOptions {
  algorithm: AccessTokenAlgorithm
  issuer: string | undefined
  audience: string | undefined
  tokenType: string
  accessTokenTtlMs: number
  refreshTokenTtlMs: number
  refreshReuseGraceMs: number
  storeTimeoutMs: number
  verifyCacheSize: number
  prefix: string
  cookie: Required<Pick<RefreshCookieOptions, 'name' | 'secure'>> & Pick<RefreshCookieOptions, 'domain'>
  allowedOrigins: string[]
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The package's namespace: options, stores, events and lower-level helpers. */
    revocableJwt: RevocableJwtNamespace
    /** `onRequest` hook: verifies the Bearer access token and rejects a revoked `jti`, session or stale version. */
    authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void>
    /** Revoke one access token until it expires. */
    revokeAccessToken (claims: Pick<AccessTokenClaims, 'sub' | 'jti' | 'exp'>): Promise<void>
    /** Invalidate every access and refresh token of the user issued before now. Returns the new version. */
    bumpTokenVersion (userId: string): Promise<number>
    /** The user's current token version. */
    getTokenVersion (userId: string): Promise<number>
  }
  interface FastifyRequest {
    /** Set by `fastify.authenticate`; null on requests it has not checked. */
    auth: AuthContext | null
  }
  interface FastifyReply {
    /** Start a session: sign an access token, mint a refresh token, store its hash and set the cookie. */
    issueTokens (subject: TokenSubject): Promise<IssuedTokens>
    /** Clear the refresh cookie. */
    clearRefreshCookie (): FastifyReply
  }
}
