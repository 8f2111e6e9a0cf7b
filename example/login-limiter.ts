/**
 * Counts password attempts per key (email + client IP) in a fixed window. An attempt
 * is counted *before* the password is checked, so concurrent guesses cannot slip past
 * the limit while a slow hash runs; a success resets the key.
 */
export interface LoginLimiter {
  /** Count one attempt; returns the attempts in the current window and the ms until it ends. */
  hit (key: string): Promise<{ count: number, retryAfterMs: number }>
  /** Forget the key's attempts (after a successful login). */
  reset (key: string): Promise<void>
}

export class MemoryLoginLimiter implements LoginLimiter {
  readonly #attempts = new Map<string, { count: number, resetAt: number }>()
  constructor (readonly max: number, readonly windowMs: number, readonly now: () => number = Date.now) {}

  async hit (key: string): Promise<{ count: number, retryAfterMs: number }> {
    const now = this.now()
    if (this.#attempts.size > 10_000) {
      for (const [k, e] of this.#attempts) if (e.resetAt <= now) this.#attempts.delete(k)
    }
    let entry = this.#attempts.get(key)
    if (entry === undefined || entry.resetAt <= now) {
      entry = { count: 0, resetAt: now + this.windowMs }
      this.#attempts.set(key, entry)
    }
    entry.count++
    return { count: entry.count, retryAfterMs: entry.resetAt - now }
  }

  async reset (key: string): Promise<void> {
    this.#attempts.delete(key)
  }
}
