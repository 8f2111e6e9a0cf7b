/** Counts failed logins per key (email + client IP) in a fixed window. */
export interface LoginLimiter {
  /** True when the key has used up its failures for the current window. */
  isBlocked (key: string): Promise<boolean>
  /** Count one failure. */
  fail (key: string): Promise<void>
  /** Forget the key's failures (after a successful login). */
  reset (key: string): Promise<void>
}

export class MemoryLoginLimiter implements LoginLimiter {
  readonly #failures = new Map<string, { count: number, resetAt: number }>()
  constructor (readonly max: number, readonly windowMs: number, readonly now: () => number = Date.now) {}

  async isBlocked (key: string): Promise<boolean> {
    const entry = this.#failures.get(key)
    if (entry === undefined) return false
    if (entry.resetAt <= this.now()) {
      this.#failures.delete(key)
      return false
    }
    return entry.count >= this.max
  }

  async fail (key: string): Promise<void> {
    const now = this.now()
    if (this.#failures.size > 10_000) {
      for (const [k, e] of this.#failures) if (e.resetAt <= now) this.#failures.delete(k)
    }
    const entry = this.#failures.get(key)
    if (entry === undefined || entry.resetAt <= now) {
      this.#failures.set(key, { count: 1, resetAt: now + this.windowMs })
    } else {
      entry.count++
    }
  }

  async reset (key: string): Promise<void> {
    this.#failures.delete(key)
  }
}
