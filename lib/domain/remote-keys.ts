import { KeyObject } from 'node:crypto'
import { createRemoteJWKSet, errors } from 'jose'
import { AuthStoreUnavailableError, TokenInvalidError } from '../errors.js'

/** What verifies tokens signed with one published key: built once per key, by the caller. */
export type VerifierFactory<V> = (publicKeyPem: string, algorithm: string) => V

export interface RemoteKeysOptions<V> {
  /** The JWKS URL (`https://auth.example/.well-known/jwks.json`). */
  url: string
  /** The algorithms a published key may verify with: asymmetric ones only. */
  algorithms: readonly string[]
  /** After a successful fetch, a token naming an unknown `kid` waits this long before it can cause another, ms. */
  cooldownMs: number
  /** Keys are fetched again at the latest this long after the last successful fetch, ms. */
  maxAgeMs: number
  /** A fetch slower than this fails, ms. */
  timeoutMs: number
  makeVerifier: VerifierFactory<V>
}

/**
 * The public keys of another service, from its JWKS, as verifiers. Fetching, caching,
 * the cooldown on unknown `kid`s and the concurrent-fetch deduplication are jose's
 * remote JWKS set; this class pins the algorithms, turns each key into a verifier once,
 * and fails closed: a JWKS that cannot be had is `AuthStoreUnavailableError` (503), and
 * after a failed fetch the next attempt waits for the cooldown, however many requests
 * arrive meanwhile.
 */
export class RemoteKeys<V> {
  readonly #set: ReturnType<typeof createRemoteJWKSet>
  readonly #algorithms: ReadonlySet<string>
  readonly #make: VerifierFactory<V>
  readonly #cooldownMs: number
  /** One verifier per imported key: a reloaded JWKS brings new key objects, and retired keys go with the old ones. */
  readonly #verifiers = new WeakMap<object, V>()
  #failedAt = -Infinity
  #failure: unknown = null

  constructor (options: RemoteKeysOptions<V>) {
    this.#set = createRemoteJWKSet(new URL(options.url), {
      cooldownDuration: options.cooldownMs,
      cacheMaxAge: options.maxAgeMs,
      timeoutDuration: options.timeoutMs
    })
    this.#algorithms = new Set(options.algorithms)
    this.#make = options.makeVerifier
    this.#cooldownMs = options.cooldownMs
  }

  /** The verifier for a token's header; rejects with TokenInvalidError or AuthStoreUnavailableError. */
  async verifierFor (header: { alg?: unknown, kid?: unknown }): Promise<V> {
    const { alg, kid } = header
    if (typeof alg !== 'string' || !this.#algorithms.has(alg) || (kid !== undefined && typeof kid !== 'string')) throw new TokenInvalidError()
    // Fail fast while the last fetch failed recently and there are no fresh keys: no fetch per request in an outage.
    if (!this.#set.fresh && performance.now() - this.#failedAt < this.#cooldownMs) {
      throw new AuthStoreUnavailableError({ cause: this.#failure })
    }
    let key: CryptoKey
    try {
      key = await this.#set({ alg, kid: kid as string | undefined })
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported || err instanceof errors.JOSEAlgNotAllowed) {
        throw new TokenInvalidError()
      }
      this.#failedAt = performance.now()
      this.#failure = err
      throw new AuthStoreUnavailableError({ cause: err })
    }
    let verifier = this.#verifiers.get(key)
    if (verifier === undefined) {
      const pem = KeyObject.from(key).export({ type: 'spki', format: 'pem' }) as string
      verifier = this.#make(pem, alg)
      this.#verifiers.set(key, verifier)
    }
    return verifier
  }
}
