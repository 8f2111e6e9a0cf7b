/**
 * Counts password attempts per key in a fixed window. An attempt is *taken* before the
 * password is checked, so concurrent guesses cannot slip past the limit while a slow
 * hash runs, and *given back* when the password was right: only failures count.
 */
export interface LoginLimiter {
  /** Take one attempt under `key` if fewer than `max` are taken in its window; otherwise count nothing. */
  take (key: string, max: number): Promise<{ taken: boolean, retryAfterMs: number }>
  /** Give back an attempt taken under `key` (the password was right, or was never checked). */
  giveBack (key: string): Promise<void>
  /** Remember `key` for `ttlMs` (a client that signed in to an account). */
  remember (key: string, ttlMs: number): Promise<void>
  isRemembered (key: string): Promise<boolean>
}

export class MemoryLoginLimiter implements LoginLimiter {
  readonly #attempts = new Map<string, { count: number, resetAt: number }>()
  readonly #remembered = new Map<string, number>()
  constructor (readonly windowMs: number, readonly now: () => number = Date.now) {}

  async take (key: string, max: number): Promise<{ taken: boolean, retryAfterMs: number }> {
    const now = this.now()
    if (this.#attempts.size > 10_000) {
      for (const [k, e] of this.#attempts) if (e.resetAt <= now) this.#attempts.delete(k)
    }
    let entry = this.#attempts.get(key)
    if (entry === undefined || entry.resetAt <= now) {
      entry = { count: 0, resetAt: now + this.windowMs }
      this.#attempts.set(key, entry)
    }
    if (entry.count >= max) return { taken: false, retryAfterMs: entry.resetAt - now }
    entry.count++
    return { taken: true, retryAfterMs: entry.resetAt - now }
  }

  async giveBack (key: string): Promise<void> {
    const entry = this.#attempts.get(key)
    if (entry !== undefined && entry.count > 0) entry.count--
  }

  async remember (key: string, ttlMs: number): Promise<void> {
    const now = this.now()
    if (this.#remembered.size > 10_000) {
      for (const [k, until] of this.#remembered) if (until <= now) this.#remembered.delete(k)
    }
    this.#remembered.set(key, now + ttlMs)
  }

  async isRemembered (key: string): Promise<boolean> {
    return (this.#remembered.get(key) ?? 0) > this.now()
  }
}

/** The limits of a `LoginThrottle`. */
export interface LoginLimits {
  /** Failures allowed per account and client in one window. */
  perClient: number
  /** Failures allowed per account from clients it has not seen sign in, in one window. */
  perAccount: number
  /** How long a client that signed in to an account is exempt from the account-wide limit. */
  knownClientMs: number
}

export type AttemptOutcome =
  | { outcome: 'valid' | 'invalid' }
  | { outcome: 'limited', retryAfterMs: number }

/**
 * The password-attempt policy of the example, over a `LoginLimiter`:
 *
 * - per account and client: `perClient` failures per window, so one client's failures
 *   lock out no one else;
 * - per account: `perAccount` failures per window from all clients together, so that
 *   rotating addresses (or a forged `X-Forwarded-For`) gains no more guesses. A client
 *   that has signed in to the account before is exempt, so an attacker keeping the
 *   account-wide limit full does not lock the owner out; any lock ends with its window;
 * - a right password gives its attempts back: successes never count;
 * - attempts of one account and client run one after another in this process, so ten
 *   concurrent right passwords are ten successes, while concurrent guesses still meet
 *   the limit (across instances, the counters are shared through the limiter's store).
 */
export class LoginThrottle {
  readonly #tails = new Map<string, Promise<unknown>>()
  constructor (readonly limiter: LoginLimiter, readonly limits: LoginLimits) {}

  /** Run `check` (the password check) as one attempt at `account` from `client`, within the limits. */
  async attempt (scope: string, account: string, client: string, check: () => Promise<boolean>): Promise<AttemptOutcome> {
    const clientKey = `${scope}|${account}|${client}`
    return await this.#oneAtATime(clientKey, async () => {
      const knownKey = `${scope}|known|${account}|${client}`
      const keys: Array<[string, number]> = [[clientKey, this.limits.perClient]]
      if (!await this.limiter.isRemembered(knownKey)) keys.push([`${scope}|account|${account}`, this.limits.perAccount])
      const taken: string[] = []
      let valid = false
      let failed = false
      try {
        for (const [key, max] of keys) {
          const { taken: ok, retryAfterMs } = await this.limiter.take(key, max)
          if (!ok) return { outcome: 'limited', retryAfterMs }
          taken.push(key)
        }
        valid = await check()
        failed = !valid
      } finally {
        // Kept only for a wrong password: a success, a refusal or an error costs nothing.
        if (!failed) for (const key of taken) await this.limiter.giveBack(key)
      }
      if (!valid) return { outcome: 'invalid' }
      await this.limiter.remember(knownKey, this.limits.knownClientMs)
      return { outcome: 'valid' }
    })
  }

  /** Run `fn` after every earlier call with the same key has settled (this process only). */
  async #oneAtATime<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(() => fn())
    const tail = run.catch(() => {})
    this.#tails.set(key, tail)
    try {
      return await run
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
