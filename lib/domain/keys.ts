import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto'

/** A JWT algorithm accepted for access tokens. */
export type AccessTokenAlgorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA'

export const ALGORITHMS: readonly AccessTokenAlgorithm[] = [
  'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'
]

/** Key material: a shared secret (HMAC) or a PEM key. */
export type KeyMaterial = string | Buffer

/** A key ready to use: what signs (if anything) and what verifies. */
export interface ResolvedKey {
  /** The `kid` header; every asymmetric key has one (its RFC 7638 thumbprint unless given). */
  kid: string | undefined
  signKey: KeyMaterial | undefined
  verifyKey: KeyMaterial
}

/** A public key as published in a JWKS: public members only. */
export interface PublicJwk extends JsonWebKey {
  kid: string
  alg: AccessTokenAlgorithm
  use: 'sig'
}

export function isHmac (algorithm: AccessTokenAlgorithm): boolean {
  return algorithm.startsWith('HS')
}

// RFC 7638 §3.2: the required members of each key type, in lexicographic order.
const THUMBPRINT_MEMBERS: Record<string, string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n']
}

/** The public members of a PEM public key as a JWK (node:crypto's export). */
export function publicJwkOf (publicKey: KeyMaterial): JsonWebKey {
  return createPublicKey(publicKey).export({ format: 'jwk' })
}

/** The RFC 7638 thumbprint of a public key: a stable `kid` for a key given without one. */
export function jwkThumbprint (jwk: JsonWebKey): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty as string]
  const canonical = JSON.stringify(Object.fromEntries(members.map(name => [name, jwk[name]])))
  return createHash('sha256').update(canonical).digest('base64url')
}

/** The JWKS of verifying keys: for asymmetric algorithms only (an HMAC secret is never published). */
export function publicJwks (algorithm: AccessTokenAlgorithm, keys: readonly ResolvedKey[]): PublicJwk[] | null {
  if (isHmac(algorithm)) return null
  return keys.map(key => ({ ...publicJwkOf(key.verifyKey), kid: key.kid as string, alg: algorithm, use: 'sig' }))
}
