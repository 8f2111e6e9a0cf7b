import { createHash, createHmac, randomFillSync } from 'node:crypto'

/** Bytes of randomness in a refresh token's secret part (256 bits). */
export const REFRESH_TOKEN_BYTES = 32
/** Bytes of randomness in a `jti` and a session id (128 bits). */
export const ID_BYTES = 16
/** Longest user id accepted, in bytes of UTF-8. */
export const MAX_USER_ID_BYTES = 128

// base64url of the user id, the session id (128 bits), then 256 bits: 43 characters.
const REFRESH_TOKEN = /^([A-Za-z0-9_-]{1,172})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/
const MAX_REFRESH_TOKEN_LENGTH = 172 + 1 + 22 + 1 + 43

/**
 * Random bytes come from the CSPRNG in blocks: one `randomFillSync` of 4 KiB serves
 * about a hundred logins, where a call per id cost about 2 µs each, 14% of a login's
 * CPU in the login benchmark (Node's own `randomUUID` keeps such a cache too). Every
 * byte is handed out once and zeroed as it is, so no secret stays in the block.
 */
const RANDOM_BLOCK_BYTES = 4096
let randomBlock = Buffer.alloc(0)
let randomOffset = 0

/** `bytes` fresh random bytes (at most a block), base64url. */
export function randomBase64url (bytes: number): string {
  if (randomOffset + bytes > randomBlock.length) {
    randomBlock = randomFillSync(Buffer.allocUnsafe(RANDOM_BLOCK_BYTES))
    randomOffset = 0
  }
  const start = randomOffset
  randomOffset += bytes
  const text = randomBlock.toString('base64url', start, randomOffset)
  randomBlock.fill(0, start, randomOffset)
  return text
}

/** A fresh 128-bit identifier, base64url (22 characters). */
export function randomId (): string {
  return randomBase64url(ID_BYTES)
}

/** SHA-256 of a token, base64url: the only form in which refresh tokens are stored. */
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * Whether a user id is one this package accepts: a non-empty, well-formed UTF-16
 * string (no lone surrogate, which UTF-8 would turn into U+FFFD and so into another
 * user's keys) of at most 128 bytes in UTF-8.
 */
export function isUserId (userId: unknown): userId is string {
  return typeof userId === 'string' && userId.length > 0 && userId.length <= MAX_USER_ID_BYTES &&
    (userId as string & { isWellFormed: () => boolean }).isWellFormed() && Buffer.byteLength(userId) <= MAX_USER_ID_BYTES
}

/** Throw a TypeError naming `name` unless `userId` is a user id this package accepts (see `isUserId`). */
export function checkUserId (userId: unknown, name = 'user id'): asserts userId is string {
  if (!isUserId(userId)) {
    throw new TypeError(`${name} must be a non-empty, well-formed string of at most ${MAX_USER_ID_BYTES} bytes`)
  }
}

/**
 * A new refresh token: `base64url(userId).sessionId.base64url(256 random bits)`. The
 * user and session parts let a store reach the session (one Redis Cluster slot per
 * user) without an index; they are not secret, the random part is.
 */
export function mintRefreshToken (userId: string, sessionId: string): string {
  return `${Buffer.from(userId).toString('base64url')}.${sessionId}.${randomBase64url(REFRESH_TOKEN_BYTES)}`
}

/**
 * The child a refresh token rotates into: the same user and session parts and an HMAC
 * of the parent under the server key. Deterministic, so a retry within the grace window
 * can be answered with the session's live token while only hashes are ever stored.
 */
export function deriveChildToken (parent: string, key: Buffer): string {
  const secretStart = parent.lastIndexOf('.') + 1
  return `${parent.slice(0, secretStart)}${createHmac('sha256', key).update(parent).digest('base64url')}`
}

/** The user and session of a well-formed refresh token, or null for anything else. */
export function parseRefreshToken (token: string): { userId: string, sessionId: string } | null {
  if (token.length > MAX_REFRESH_TOKEN_LENGTH) return null
  const match = REFRESH_TOKEN.exec(token)
  if (match === null) return null
  const userId = Buffer.from(match[1], 'base64url').toString('utf8')
  // Only the canonical encoding of an accepted id: one token, one spelling.
  if (!isUserId(userId) || Buffer.from(userId).toString('base64url') !== match[1]) return null
  return { userId, sessionId: match[2] }
}
