/**
 * Option handling shared by the plugins: one duration convention, names checked
 * against what a plugin knows (with a suggestion for a misspelling), and the
 * defaults as named constants.
 */

/**
 * A duration: a number of seconds, or a string of digits with an optional unit
 * `s`, `m`, `h` or `d` (`900`, `900s`, `15m`, `7d`).
 */
export type Duration = number | string

export const DEFAULT_ACCESS_TOKEN_TTL = '15m'
export const DEFAULT_REFRESH_TOKEN_TTL = '7d'
export const DEFAULT_REFRESH_REUSE_GRACE = '10s'
export const DEFAULT_STORE_TIMEOUT = '2s'
export const DEFAULT_CLOCK_TOLERANCE = '5s'
export const DEFAULT_VERIFY_CACHE_SIZE = 10_000
export const DEFAULT_MAX_SESSIONS = 100
/** Rotated refresh tokens a session keeps for reuse detection. */
export const KEEP_ROTATED_PER_SESSION = 64
export const DEFAULT_PREFIX = '/auth'
export const DEFAULT_COOKIE_NAME = 'refresh_token'
export const DEFAULT_TOKEN_TYPE = 'at+jwt'

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d+)([smhd]?)$/

/**
 * Parse a duration: a number of seconds, or digits with an optional unit
 * (`900`, `900s`, `15m`, `2h`, `7d`). Returns milliseconds; throws a TypeError
 * naming `name` for anything else.
 */
export function parseDuration (value: Duration, name: string): number {
  let ms: number
  if (typeof value === 'number') {
    ms = value * 1000
  } else if (typeof value === 'string' && DURATION.test(value.trim())) {
    const [, digits, unit] = DURATION.exec(value.trim()) as RegExpExecArray
    ms = Number(digits) * UNIT_MS[unit === '' ? 's' : unit]
  } else {
    throw new TypeError(`${name} must be a number of seconds or a string like "900", "900s", "15m" or "7d", got ${JSON.stringify(value)}`)
  }
  if (!Number.isFinite(ms) || ms < 0 || !Number.isSafeInteger(Math.round(ms))) {
    throw new RangeError(`${name} must be a finite, non-negative duration, got ${String(value)}`)
  }
  return Math.round(ms)
}

/** Human form of a duration in ms, for error messages: `10.4 days`, `1 minute`, `500 ms`. */
export function describeDuration (ms: number): string {
  if (ms < 1000) return `${ms} ms`
  const [unit, size] = ms >= UNIT_MS.d ? ['day', UNIT_MS.d] : ms >= UNIT_MS.h ? ['hour', UNIT_MS.h] : ms >= UNIT_MS.m ? ['minute', UNIT_MS.m] : ['second', UNIT_MS.s]
  const value = Number((ms / size).toFixed(1))
  return `${value} ${unit}${value === 1 ? '' : 's'}`
}

/**
 * Parse a duration and check it lies within `[min, max]` ms, naming the option and,
 * for a value far too large, the likely mistake (milliseconds where seconds are read).
 */
export function durationOption (value: Duration | undefined, fallback: Duration, name: string, min: number, max: number): number {
  const ms = parseDuration(value ?? fallback, name)
  if (ms < min) throw new RangeError(`${name} must be at least ${describeDuration(min)}, got ${JSON.stringify(value)}`)
  if (ms > max) {
    const hint = typeof value === 'number' ? ' (a number is read as seconds: did you mean milliseconds? write a string like "15m")' : ''
    throw new RangeError(`${name} must be at most ${describeDuration(max)}, got ${JSON.stringify(value)}, which is ${describeDuration(ms)}${hint}`)
  }
  return ms
}

/** Levenshtein distance, for suggesting the option a misspelt name meant. */
function distance (a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]
}

/** The known name closest to `name`, when close enough to be a misspelling of it. */
export function closestName (name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(name, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

/**
 * Refuse an options object that is not an object or names an option the plugin does
 * not know (a misspelt option would otherwise be silently ignored and its default used).
 */
export function checkOptionNames (options: unknown, known: readonly string[], where: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${where}: options must be an object`)
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue
    const suggestion = closestName(name, known)
    throw new TypeError(`${where}: unknown option "${name}"${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}; known options: ${known.join(', ')}`)
  }
}

/** Pick the options a plugin takes out of an umbrella's options. */
export function pick<T extends object> (options: T, names: readonly string[]): Partial<T> {
  const picked: Record<string, unknown> = {}
  for (const name of names) {
    if ((options as Record<string, unknown>)[name] !== undefined) picked[name] = (options as Record<string, unknown>)[name]
  }
  return picked as Partial<T>
}

export function optionalFunction (value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`${name} must be a function`)
}

export function optionalNonEmptyString (value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new TypeError(`${name} must be a non-empty string`)
}

/** A store given as an option: an object with these methods. */
export function checkStore (store: unknown, name: string, methods: readonly string[]): void {
  if (store === undefined) return
  if (store === null || typeof store !== 'object') throw new TypeError(`${name} must be an object`)
  for (const method of methods) {
    if (typeof (store as Record<string, unknown>)[method] !== 'function') {
      throw new TypeError(`${name}.${method} must be a function`)
    }
  }
}
