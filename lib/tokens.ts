import { createHash, createHmac, randomBytes } from 'node:crypto'

/** Bytes of randomness in a refresh token's secret part (256 bits). */
export const REFRESH_TOKEN_BYTES = 32
/** Bytes of randomness in a `jti` and a session id (128 bits). */
export const ID_BYTES = 16
/** Longest user id accepted in a token. */
export const MAX_USER_ID_LENGTH = 128

// base64url of the user id, a dot, then 43 base64url characters (256 bits).
const REFRESH_TOKEN = /^([A-Za-z0-9_-]{1,172})\.([A-Za-z0-9_-]{43})$/

/** A fresh 128-bit identifier, base64url. */
export function randomId (): string {
  return randomBytes(ID_BYTES).toString('base64url')
}

/** SHA-256 of a token, base64url: the only form in which refresh tokens are stored. */
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * A new refresh token: `base64url(userId).base64url(256 random bits)`. The user id
 * part lets a store find the user's keys (one Redis Cluster slot per user) without
 * a lookup; it is not a secret, the random part is.
 */
export function mintRefreshToken (userId: string): string {
  return `${Buffer.from(userId).toString('base64url')}.${randomBytes(REFRESH_TOKEN_BYTES).toString('base64url')}`
}

/**
 * The child a refresh token rotates into: the same user part and an HMAC of the
 * parent under the server key. Deterministic, so a retry within the grace window
 * gets the very same child, while only hashes are ever stored.
 */
export function deriveChildToken (parent: string, key: Buffer): string {
  const dot = parent.indexOf('.')
  return `${parent.slice(0, dot)}.${createHmac('sha256', key).update(parent).digest('base64url')}`
}

/** The user id of a well-formed refresh token, or null for anything else. */
export function parseRefreshToken (token: string): string | null {
  if (token.length > 216) return null
  const match = REFRESH_TOKEN.exec(token)
  if (match === null) return null
  const userId = Buffer.from(match[1], 'base64url').toString('utf8')
  if (userId.length === 0 || userId.length > MAX_USER_ID_LENGTH || Buffer.from(userId).toString('base64url') !== match[1]) return null
  return userId
}
