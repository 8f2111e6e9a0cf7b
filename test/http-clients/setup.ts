// What the HTTP-client tests share: the example server listening on a free port, a
// log of the requests it saw (the wire), and waiting for an access token to expire.
import { setTimeout as sleep } from 'node:timers/promises'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { Cookie, type CookieJar } from 'tough-cookie'
import { build, type ExampleEnv } from '../../example/app.js'
import { TEST_SECRET } from '../helper.js'
import { RedisServer } from '../redis-server.js'

/** Access tokens live this long: short, so that waiting for one to expire stays cheap. */
export const ACCESS_TOKEN_TTL = '2s'
/** The refresh cookie's name (the plugin's default). */
export const REFRESH_COOKIE = 'refresh_token'
/** Requests the tests make themselves (register, checks) carry this header and are not counted. */
const PROBE_HEADER = 'x-test-probe'
export const PASSWORD = 'correct horse battery'

export type StoreKind = 'memory' | 'redis'

/** One request as the server saw it. */
export interface WireEntry {
  method: string
  path: string
  /** 0 until the answer is sent. */
  status: number
  /** When the answer was sent (Date.now()). */
  answeredAt: number
  /** The error answer's `code`, or null. */
  code: string | null
  /** `/auth/refresh` and `/auth/login`: the refresh cookie presented, and the one the answer set. */
  presented?: string
  issued?: string
}

interface Hold {
  path: string
  arrived: () => void
  released: Promise<void>
}

/** The requests of the clients under test, in the order they arrived. */
export class Wire {
  readonly entries: WireEntry[] = []
  /** Refresh token → the child the first successful refresh with it answered. */
  readonly #rotations = new Map<string, string>()
  #holds: Hold[] = []

  /** A mark to count from: `wire.since(mark)`. */
  mark (): number { return this.entries.length }

  since (mark: number): WireEntry[] { return this.entries.slice(mark) }

  count (mark: number, method: string, path: string): number {
    return this.since(mark).filter(e => e.method === method && e.path === path).length
  }

  refreshes (mark: number): WireEntry[] {
    return this.since(mark).filter(e => e.method === 'POST' && e.path === '/auth/refresh')
  }

  /** Every error code answered since `mark`. */
  codes (mark: number): string[] {
    return this.since(mark).flatMap(e => e.code === null ? [] : [e.code])
  }

  /**
   * The newest refresh token of the session that began with `token`: follow each
   * token to the child its first successful refresh answered, until one has none.
   */
  live (token: string): string {
    let current = token
    for (let next = this.#rotations.get(current); next !== undefined; next = this.#rotations.get(current)) current = next
    return current
  }

  /** Whether a successful refresh has already presented this token (it has a child). */
  rotated (token: string | undefined): boolean {
    return token !== undefined && this.#rotations.has(token)
  }

  /**
   * Hold the next request to `path` before its handler runs, until `release()`. Its
   * cookies are read as it arrives, so it presents what the jar held at that moment.
   */
  hold (path: string): { arrived: Promise<void>, release: () => void } {
    let arrived!: () => void
    let release!: () => void
    const arrival = new Promise<void>(resolve => { arrived = resolve })
    const released = new Promise<void>(resolve => { release = resolve })
    this.#holds.push({ path, arrived, released })
    return { arrived: arrival, release }
  }

  /** Called by the server's hooks. */
  async arrive (entry: WireEntry): Promise<void> {
    this.entries.push(entry)
    const hold = this.#holds.find(h => h.path === entry.path)
    if (hold === undefined) return
    this.#holds = this.#holds.filter(h => h !== hold)
    hold.arrived()
    await hold.released
  }

  answered (entry: WireEntry): void {
    if (entry.path === '/auth/refresh' && entry.status === 200 && entry.presented !== undefined && entry.issued !== undefined &&
      !this.#rotations.has(entry.presented)) {
      this.#rotations.set(entry.presented, entry.issued)
    }
  }
}

export interface Server {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string
  wire: Wire
  /** Register a fresh user (not counted on the wire); returns its email. */
  register: () => Promise<string>
  /** A request the tests make themselves, not counted on the wire. */
  probe: (path: string, init?: RequestInit) => Promise<Probed>
}

export interface Probed {
  status: number
  code: string | null
  body: unknown
}

let users = 0

function parse (payload: unknown): unknown {
  try {
    return typeof payload === 'string' ? JSON.parse(payload) : null
  } catch {
    return null
  }
}

function errorCode (body: unknown): string | null {
  return typeof body === 'object' && body !== null && 'code' in body && typeof body.code === 'string' ? body.code : null
}

/** The value of the refresh cookie a `Set-Cookie` header sets, parsed by tough-cookie. */
function issuedRefreshToken (header: unknown): string | undefined {
  const lines = Array.isArray(header) ? header : typeof header === 'string' ? [header] : []
  for (const line of lines) {
    const cookie = Cookie.parse(String(line))
    if (cookie?.key === REFRESH_COOKIE && cookie.value !== '') return cookie.value
  }
  return undefined
}

/**
 * The example server on 127.0.0.1, a free port, 2-second access tokens and the default
 * `Secure` refresh cookie (tough-cookie, like browsers, keeps `Secure` cookies of a
 * loopback host over plain http). With `redis`, a private redis-server of its own.
 */
export async function startServer (t: Test, store: StoreKind, env: ExampleEnv = {}): Promise<Server> {
  let redis: RedisServer | undefined
  if (store === 'redis') {
    redis = await RedisServer.start()
    t.teardown(() => redis?.close())
  }
  const app = await build({
    env: { JWT_SECRET: TEST_SECRET, ACCESS_TOKEN_TTL, ...(redis === undefined ? {} : { REDIS_URL: redis.url }), ...env }
  })
  const wire = new Wire()
  const entries = new WeakMap<object, WireEntry>()
  // Added before listen(), after the example's routes: root hooks apply to every route.
  app.addHook('onRequest', async function countOnTheWire (request) {
    if (request.headers[PROBE_HEADER] !== undefined) return
    const entry: WireEntry = { method: request.method, path: request.url.split('?')[0] as string, status: 0, answeredAt: 0, code: null }
    entries.set(request, entry)
    await wire.arrive(entry)
  })
  app.addHook('onSend', async function readTheAnswer (request, reply, payload) {
    const entry = entries.get(request)
    if (entry === undefined) return payload
    entry.status = reply.statusCode
    entry.answeredAt = Date.now()
    if (reply.statusCode >= 400) entry.code = errorCode(parse(payload))
    entry.presented = request.cookies[REFRESH_COOKIE]
    entry.issued = issuedRefreshToken(reply.getHeader('set-cookie'))
    wire.answered(entry)
    return payload
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  async function probe (path: string, init: RequestInit = {}): Promise<Probed> {
    const headers = new Headers(init.headers)
    headers.set(PROBE_HEADER, '1')
    const response = await fetch(`${url}${path}`, { ...init, headers })
    const body = parse(await response.text())
    return { status: response.status, code: errorCode(body), body }
  }

  async function register (): Promise<string> {
    const email = `client${++users}-${process.pid}@example.com`
    const res = await probe('/auth/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD })
    })
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.code}`)
    return email
  }

  return { url, wire, register, probe }
}

/** The refresh token the jar would send to `/auth/refresh`, or undefined. */
export async function refreshTokenIn (jar: CookieJar, url: string): Promise<string | undefined> {
  const cookies = await jar.getCookies(`${url}/auth/refresh`)
  return cookies.find(c => c.key === REFRESH_COOKIE)?.value
}

/** The `exp` claim of an access token, in milliseconds. The token is only read, never trusted. */
export function expiresAt (accessToken: string): number {
  const payload: unknown = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'))
  if (typeof payload !== 'object' || payload === null || !('exp' in payload) || typeof payload.exp !== 'number') {
    throw new Error('the access token has no exp claim')
  }
  return payload.exp * 1000
}

/**
 * Wait until the server answers `GET /me` with this token `TOKEN_EXPIRED`: first until
 * the token's own `exp`, then, should the server still accept it (a clock tolerance),
 * ask again every 20 ms for at most 2 s more.
 */
export async function waitForExpiry (server: Server, accessToken: string | null): Promise<void> {
  if (accessToken === null) throw new Error('no access token to wait for')
  await sleep(Math.max(0, expiresAt(accessToken) - Date.now()))
  const deadline = Date.now() + 2000
  for (;;) {
    const res = await server.probe('/me', { headers: { authorization: `Bearer ${accessToken}` } })
    if (res.code === 'TOKEN_EXPIRED') return
    if (Date.now() > deadline) throw new Error(`the access token did not expire: GET /me answers ${res.status} ${res.code}`)
    await sleep(20)
  }
}
