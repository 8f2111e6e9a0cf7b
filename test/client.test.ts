import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from './helper.js'
import { MemoryRefreshTokenStore, MemoryRevocationStore } from '../lib/stores/memory.js'
import {
  RevocableJwtClient,
  RevocableJwtClientError,
  createClient,
  type BroadcastChannelLike,
  type ClientClock,
  type ClientEventMap,
  type FetchLike,
  type LockManagerLike,
  type RevocableJwtClientOptions,
  type StorageLike
} from '../lib/client/index.js'

const BASE = 'http://localhost'
const TTL_MS = 60_000
const PASSWORD = 'correct horse battery'

/**
 * Moves Date.now forward. The access token's `exp` is written and checked by fast-jwt,
 * which reads Date.now and takes no clock from the plugin; the stores and the client get
 * `() => Date.now()` so that one shifted clock drives them all, without sleeping.
 */
function shiftableClock (t: Test): { advance: (ms: number) => void } {
  const realNow = Date.now
  let offset = 0
  Date.now = () => realNow() + offset
  t.teardown(() => { Date.now = realNow })
  return { advance: ms => { offset += ms } }
}

interface Failures {
  rotate: boolean
  check: boolean
}

async function startApp (t: Test): Promise<{ app: FastifyInstance, failures: Failures, advance: (ms: number) => void }> {
  const { advance } = shiftableClock(t)
  const now = (): number => Date.now()
  const failures: Failures = { rotate: false, check: false }
  const refreshTokenStore = new MemoryRefreshTokenStore({ now })
  const revocationStore = new MemoryRevocationStore({ now })
  // Real stores that can be made unreachable: the server then answers 503 AUTH_STORE_UNAVAILABLE itself.
  const rotate = refreshTokenStore.rotate.bind(refreshTokenStore)
  refreshTokenStore.rotate = async input => { if (failures.rotate) throw new Error('down'); return await rotate(input) }
  const check = revocationStore.check.bind(revocationStore)
  revocationStore.check = async (...args) => { if (failures.check) throw new Error('down'); return await check(...args) }
  const app = await build({ now, refreshTokenStore, revocationStore, env: { ACCESS_TOKEN_TTL: `${TTL_MS / 1000}s`, REFRESH_REUSE_GRACE: '2s' } })
  t.teardown(() => app.close())
  return { app, failures, advance }
}

/**
 * One browser profile: a fetch over `app.inject()` with a cookie jar that sends the
 * refresh cookie to /auth like a browser would. Records every call.
 */
class Profile {
  readonly jar = new Map<string, string>()
  readonly calls: string[] = []
  /** Make the next call to this path throw like a network failure. */
  failNext: string | null = null
  /** Hold calls to this path until the returned function is called. */
  holds = new Map<string, Promise<void>>()
  /** Runs after each answer (before the client sees it). */
  afterAnswer: (path: string) => void = () => {}

  constructor (readonly app: FastifyInstance) {}

  hold (path: string): () => void {
    let release = (): void => {}
    this.holds.set(path, new Promise(resolve => { release = resolve }))
    return () => { this.holds.delete(path); release() }
  }

  fetch: FetchLike = async (input: string, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input)
    const method = init.method ?? 'GET'
    this.calls.push(`${method} ${url.pathname}`)
    await this.holds.get(url.pathname)
    if (this.failNext === url.pathname) {
      this.failNext = null
      throw new TypeError('fetch failed')
    }
    const headers: Record<string, string> = Object.fromEntries(new Headers(init.headers as ConstructorParameters<typeof Headers>[0]))
    const cookie = this.jar.get('refresh_token')
    if (cookie !== undefined && url.pathname.startsWith('/auth') && init.credentials !== 'omit') headers.cookie = `refresh_token=${cookie}`
    const res = await this.app.inject({ method: method as 'GET', url: url.pathname, headers, payload: typeof init.body === 'string' ? init.body : undefined })
    for (const c of res.cookies as Array<{ name: string, value: string, expires?: Date }>) {
      if (c.value === '' || (c.expires !== undefined && c.expires.getTime() < Date.now())) this.jar.delete(c.name)
      else this.jar.set(c.name, c.value)
    }
    this.afterAnswer(url.pathname)
    return new Response(res.statusCode === 204 ? null : res.body, { status: res.statusCode, headers: { 'content-type': String(res.headers['content-type'] ?? 'text/plain') } })
  }

  count (call: string): number {
    return this.calls.filter(c => c === call).length
  }
}

let users = 0

async function register (app: FastifyInstance): Promise<string> {
  const email = `client${++users}-${process.pid}@example.com`
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  if (res.statusCode !== 201) throw new Error(res.body)
  return email
}

function recordEvents (client: RevocableJwtClient): Array<[string, unknown]> {
  const events: Array<[string, unknown]> = []
  client.on('token', detail => events.push(['token', detail.source]))
  client.on('logged-out', detail => events.push(['logged-out', detail]))
  return events
}

function newClient (t: Test, profile: Profile, options: RevocableJwtClientOptions = {}): RevocableJwtClient {
  const client = createClient({ baseUrl: BASE, fetch: profile.fetch, ...options })
  t.teardown(() => client.close())
  return client
}

async function signedIn (t: Test, app: FastifyInstance, options: RevocableJwtClientOptions = {}, profile = new Profile(app)): Promise<{ client: RevocableJwtClient, profile: Profile, email: string }> {
  const email = await register(app)
  const client = newClient(t, profile, options)
  await client.login({ email, password: PASSWORD })
  return { client, profile, email }
}

async function status (response: unknown): Promise<string> {
  const res = response as Response
  const body = await res.text()
  return `${res.status} ${res.status === 200 ? '' : (JSON.parse(body) as { code: string }).code}`.trim()
}

t.test('bad options are refused with a message naming the option', async t => {
  const fetch: FetchLike = async () => new Response(null)
  t.throws(() => createClient(null as unknown as RevocableJwtClientOptions), { message: 'options must be an object' })
  t.throws(() => createClient({ fetch, baseUrl: 'https://api.example.com/' }), { message: /^baseUrl must be a string without a trailing slash/ })
  t.throws(() => createClient({ fetch, baseUrl: 1 as unknown as string }), { message: /^baseUrl must be/ })
  t.throws(() => createClient({ fetch, prefix: 'auth' }), { message: 'prefix must be a path like "/auth" (leading slash, no trailing slash)' })
  t.throws(() => createClient({ fetch, prefix: '/auth/' }), { message: /^prefix must be/ })
  t.throws(() => createClient({ fetch, prefix: 5 as unknown as string }), { message: /^prefix must be/ })
  t.throws(() => createClient({ fetch, refreshBeforeExpiry: -1 }), { message: 'refreshBeforeExpiry must be a number of milliseconds, 0 or more' })
  t.throws(() => createClient({ fetch, refreshBeforeExpiry: Infinity }), { message: /^refreshBeforeExpiry/ })
  t.throws(() => createClient({ fetch, refreshBeforeExpiry: '5' as unknown as number }), { message: /^refreshBeforeExpiry/ })
  t.throws(() => createClient({ fetch, refreshOn: 'TOKEN_EXPIRED' as unknown as string[] }), { message: 'refreshOn must be an array of error codes' })
  t.throws(() => createClient({ fetch, refreshOn: [1] as unknown as string[] }), { message: /^refreshOn/ })
  const globalFetch = globalThis.fetch
  t.teardown(() => { globalThis.fetch = globalFetch })
  globalThis.fetch = undefined as unknown as typeof globalThis.fetch
  t.throws(() => createClient(), { message: 'fetch must be a function (this environment has no global fetch)' })
  globalThis.fetch = globalFetch
  const client = new RevocableJwtClient()
  t.equal(client.state, 'unknown')
  t.throws(() => client.setTokens({ accessToken: '' }), { message: 'tokens.accessToken must be a non-empty string' })
  t.throws(() => client.setTokens(null as unknown as { accessToken: string }), { message: 'tokens.accessToken must be a non-empty string' })
})

t.test('the access token is only ever sent below baseUrl', async t => {
  const { app } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  await t.rejects(client.fetch('https://evil.example/steal'), { name: 'TypeError', message: /only sent below baseUrl/ })
  await t.rejects(client.fetch('//evil.example/steal'), TypeError)
  await t.rejects(client.fetch(`${BASE}.evil.example/me`), TypeError)
  await t.rejects(client.fetch(new URL(`${BASE}/me`) as unknown as string), { message: 'input must be a string' })
  t.equal(await status(await client.fetch(`${BASE}/me`)), '200', 'an absolute URL below baseUrl is fine')
  t.same(profile.calls, ['POST /auth/login', 'GET /me'])
})

t.test('with no session cookie, start() emits exactly one logged-out event and later calls never refresh', async t => {
  const { app } = await startApp(t)
  const profile = new Profile(app)
  const client = newClient(t, profile)
  const events = recordEvents(client)
  t.equal(await client.start(), false)
  t.equal(await client.start(), false)
  t.equal(client.state, 'logged-out')
  t.equal(await status(await client.fetch('/me')), '401 TOKEN_MISSING', 'sent without a token, answered as is')
  t.same(events, [['logged-out', { reason: 'refresh-failed', code: 'REFRESH_TOKEN_MISSING' }]])
  t.same(profile.calls, ['POST /auth/refresh', 'POST /auth/refresh', 'GET /me'], 'start() asks again; a request does not')
  t.equal(client.accessToken, null)
  t.equal(client.timeLeft(), null)
})

t.test('login keeps the token in memory and attaches it as a Bearer token', async t => {
  const { app } = await startApp(t)
  const profile = new Profile(app)
  const client = newClient(t, profile)
  const events = recordEvents(client)
  const email = await register(app)
  await t.rejects(client.login({ email, password: 'wrong password' }), { name: 'RevocableJwtClientError', status: 401, code: 'INVALID_CREDENTIALS', message: 'login failed with 401 INVALID_CREDENTIALS' })
  await client.login({ email, password: PASSWORD })
  t.equal(client.state, 'authenticated')
  t.match(client.accessToken, /^ey/)
  t.match(client.sessionId, /^[A-Za-z0-9_-]+$/)
  t.ok(client.timeLeft() as number > TTL_MS - 1000 && client.timeLeft() as number <= TTL_MS)
  const me = await client.fetch('/me', { headers: { accept: 'application/json' } })
  t.same(await (me as Response).json(), { id: (await (await client.fetch('/me') as Response).json() as { id: string }).id, email })
  t.same(events, [['token', 'login']])
  t.equal(await client.start(), true, 'start() with a token does nothing')
  t.same(profile.calls, ['POST /auth/login', 'POST /auth/login', 'GET /me', 'GET /me'])
})

t.test('N concurrent requests meeting TOKEN_EXPIRED cause exactly one refresh', async t => {
  const { app, advance } = await startApp(t)
  const { client, profile, email } = await signedIn(t, app)
  const events = recordEvents(client)
  const before = client.accessToken
  advance(TTL_MS + 1000)
  const answers = await Promise.all(Array.from({ length: 8 }, () => client.fetch('/me')))
  t.match(await (answers[0] as Response).clone().text(), email)
  t.same(await Promise.all(answers.map(status)), Array(8).fill('200'))
  t.equal(profile.count('POST /auth/refresh'), 1, 'one refresh')
  t.equal(profile.count('GET /me'), 16, 'each request: one 401, one retry')
  t.not(client.accessToken, before)
  t.same(events, [['token', 'refresh']])

  // A 401 arriving after a refresh has finished reuses its token instead of refreshing again.
  advance(TTL_MS + 1000)
  const release = profile.hold('/me')
  const slow = client.fetch('/me')
  await new Promise(resolve => setTimeout(resolve, 10))
  await client.refresh()
  release()
  t.equal(await status(await slow), '200')
  t.equal(profile.count('POST /auth/refresh'), 2, 'the explicit refresh only')
})

t.test('a retried request that fails again is returned as is: no loop', async t => {
  const { app, advance } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  const events = recordEvents(client)
  advance(TTL_MS + 1000)
  // The refreshed token is already expired by the time the retry arrives.
  profile.afterAnswer = path => { if (path === '/auth/refresh') advance(TTL_MS + 1000) }
  t.equal(await status(await client.fetch('/me')), '401 TOKEN_EXPIRED')
  t.same(profile.calls.slice(1), ['GET /me', 'POST /auth/refresh', 'GET /me'])
  t.same(events, [['token', 'refresh']], 'no logged-out: the refresh itself worked')
})

t.test('a body that cannot be sent twice is not retried, but the refresh still happens', async t => {
  const { app, advance } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  advance(TTL_MS + 1000)
  const answer = await client.fetch('/me', { method: 'GET', body: new ReadableStream() } as RequestInit)
  t.equal(await status(answer), '401 TOKEN_EXPIRED')
  t.same(profile.calls.slice(1), ['GET /me', 'POST /auth/refresh'])
  t.equal(await status(await client.fetch('/me')), '200', 'the next call uses the new token')
})

t.test('a refresh that fails transiently returns the original answer and logs no one out', async t => {
  const { app, advance, failures } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  const events = recordEvents(client)
  advance(TTL_MS + 1000)
  profile.failNext = '/auth/refresh'
  t.equal(await status(await client.fetch('/me')), '401 TOKEN_EXPIRED', 'network error')
  failures.rotate = true
  t.equal(await status(await client.fetch('/me')), '401 TOKEN_EXPIRED', 'store down: 503')
  await t.rejects(client.refresh(), { name: 'RevocableJwtClientError', status: 503, code: 'AUTH_STORE_UNAVAILABLE', message: 'refresh failed with 503 AUTH_STORE_UNAVAILABLE' })
  t.equal(client.state, 'authenticated')
  t.equal(await client.start(), true, 'start() keeps a held token')
  failures.rotate = false
  t.equal(await status(await client.fetch('/me')), '200', 'the next call refreshes')
  t.same(events, [['token', 'refresh']])
  t.equal(profile.count('POST /auth/refresh'), 4)

  const fresh = newClient(t, profile)
  profile.failNext = '/auth/refresh'
  t.equal(await fresh.start(), false, 'start() on a network error')
  t.equal(fresh.state, 'unknown', 'still unknown: no logged-out for a network error')
})

t.test('refreshOn: a revoked token refreshes by default, and only the listed codes do', async t => {
  const { app } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  const claims = JSON.parse(Buffer.from((client.accessToken as string).split('.')[1], 'base64url').toString()) as { sub: string, jti: string, exp: number }
  await app.revocableJwt.revokeAccessToken(claims)
  t.equal(await status(await client.fetch('/me')), '200', 'one revoked jti: the cookie says the session lives')
  t.same(profile.calls.slice(1), ['GET /me', 'POST /auth/refresh', 'GET /me'])

  const strict = (await signedIn(t, app, { refreshOn: ['TOKEN_EXPIRED'] })).client
  const strictClaims = JSON.parse(Buffer.from((strict.accessToken as string).split('.')[1], 'base64url').toString()) as { sub: string, jti: string, exp: number }
  await app.revocableJwt.revokeAccessToken(strictClaims)
  t.equal(await status(await strict.fetch('/me')), '401 TOKEN_REVOKED', 'not listed: returned as is')
})

t.test('logout ends the session on the server and here; a second logout is a no-op', async t => {
  const { app } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  const events = recordEvents(client)
  await client.logout()
  t.equal(client.state, 'logged-out')
  t.equal(profile.jar.size, 0, 'the server cleared the cookie')
  await client.logout()
  t.same(profile.calls.slice(1), ['POST /auth/logout'])
  t.same(events, [['logged-out', { reason: 'logout', code: null }]])
  t.equal(await status(await client.fetch('/me')), '401 TOKEN_MISSING')
  t.equal(await client.start(), false)
  t.equal(events.length, 1, 'still one logged-out event')
})

t.test('logout that the server cannot confirm still forgets the token and rejects', async t => {
  const { app, failures } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  failures.check = true
  await t.rejects(client.logout(), { status: 503, code: 'AUTH_STORE_UNAVAILABLE', message: 'logout failed with 503 AUTH_STORE_UNAVAILABLE' })
  t.equal(client.state, 'logged-out')
  failures.check = false

  const other = await signedIn(t, app, {}, profile)
  profile.failNext = '/auth/logout-all'
  await t.rejects(other.client.logoutAll(), { message: 'fetch failed' })
  t.equal(other.client.accessToken, null)
})

t.test('logout from a client that never started ends the session the cookie holds', async t => {
  const { app } = await startApp(t)
  const { profile } = await signedIn(t, app)
  const reloaded = newClient(t, profile)
  await reloaded.logout()
  t.same(profile.calls.slice(1), ['POST /auth/refresh', 'POST /auth/logout'])
  t.equal(profile.jar.size, 0)
})

t.test('logoutAll ends every device: the other one is logged out at its next call, once', async t => {
  const { app } = await startApp(t)
  const { client, email } = await signedIn(t, app)
  const phone = new Profile(app)
  const other = newClient(t, phone)
  await other.login({ email, password: PASSWORD })
  const events = recordEvents(other)
  await client.logoutAll()
  t.equal(client.state, 'logged-out')
  t.equal(await status(await other.fetch('/me')), '401 TOKEN_REVOKED')
  t.equal(await status(await other.fetch('/me')), '401 TOKEN_MISSING')
  t.same(phone.calls.slice(1), ['GET /me', 'POST /auth/refresh', 'GET /me'], 'one refresh, then no more')
  t.same(events, [['logged-out', { reason: 'refresh-failed', code: 'REFRESH_TOKEN_INVALID' }]])
})

t.test('sessions: list, revoke another device, revoke this one', async t => {
  const { app } = await startApp(t)
  const { client, email } = await signedIn(t, app)
  const phone = new Profile(app)
  const other = newClient(t, phone)
  await other.login({ email, password: PASSWORD })
  const sessions = await client.listSessions()
  t.equal(sessions.length, 2)
  t.same(sessions.filter(s => s.current).map(s => s.id), [client.sessionId])
  await t.rejects(client.revokeSession('unknown'), { status: 404, code: 'SESSION_NOT_FOUND' })
  await client.revokeSession(other.sessionId as string)
  const events = recordEvents(other)
  t.equal(await status(await other.fetch('/me')), '401 TOKEN_REVOKED')
  t.same(events, [['logged-out', { reason: 'refresh-failed', code: 'REFRESH_TOKEN_INVALID' }]])

  const own = recordEvents(client)
  await client.revokeSession(client.sessionId as string)
  t.same(own, [['logged-out', { reason: 'session-revoked', code: null }]])
  await t.rejects(client.listSessions(), { status: 401, code: 'TOKEN_MISSING', message: 'listing sessions failed with 401 TOKEN_MISSING' })
})

t.test('a login or logout during a refresh wins over the refresh\'s answer', async t => {
  const { app, advance } = await startApp(t)
  const { client, profile } = await signedIn(t, app)
  const events = recordEvents(client)
  advance(TTL_MS + 1000)
  const release = profile.hold('/auth/refresh')
  const refreshing = client.refresh()
  await new Promise(resolve => setTimeout(resolve, 10))
  client.setTokens({ accessToken: 'a.b.c', expiresIn: 60 })
  release()
  t.equal(await refreshing, 'a.b.c', 'the refresh answer was ignored')
  t.equal(client.accessToken, 'a.b.c')
  t.same(events, [['token', 'login']])
})

t.test('setTokens reads exp from the token when expiresIn is missing, and tolerates a token it cannot decode', async t => {
  const { app } = await startApp(t)
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: await register(app), password: PASSWORD } })
  const { accessToken } = res.json() as { accessToken: string }
  const client = newClient(t, new Profile(app))
  client.setTokens({ accessToken })
  const exp = (JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()) as { exp: number }).exp
  t.equal(client.expiresAt, exp * 1000)
  client.setTokens({ accessToken: 'not-a-jwt' })
  t.equal(client.expiresAt, null)
  t.equal(client.sessionId, null)
  t.equal(client.timeLeft(), null)
  client.setTokens({ accessToken: `x.${Buffer.from('42').toString('base64url')}.y` })
  t.equal(client.sessionId, null, 'a payload that is not an object')
})

t.test('answers the real server never gives: a non-JSON 401 and a refresh without a token', async t => {
  const calls: string[] = []
  const fetch: FetchLike = async (input) => {
    calls.push(input)
    if (input.endsWith('/refresh')) return new Response('[]', { status: 200, headers: { 'content-type': 'application/json' } })
    if (input.endsWith('/sessions')) return new Response('{}', { status: 401, headers: { 'content-type': 'application/json' } })
    return new Response('<html>401</html>', { status: 401, headers: { 'content-type': 'text/html' } })
  }
  const client = createClient({ baseUrl: BASE, fetch })
  client.setTokens({ accessToken: 'a.b.c', expiresIn: 60 })
  t.equal((await client.fetch('/me') as Response).status, 401, 'returned as is, no refresh')
  await t.rejects(client.refresh(), { message: 'refresh answered without an access token', code: null })
  await t.rejects(client.listSessions(), { status: 401, code: null, message: 'listing sessions failed with 401' })
  t.same(calls, [`${BASE}/me`, `${BASE}/auth/refresh`, `${BASE}/auth/sessions`])
  t.ok(new RevocableJwtClientError(500, null, 'x') instanceof Error)
})

t.test('listeners can unsubscribe, and a throwing listener is reported without breaking the client', async t => {
  const { app } = await startApp(t)
  const client = newClient(t, new Profile(app))
  const seen: Array<ClientEventMap['token']['source']> = []
  const off = client.on('token', detail => { seen.push(detail.source) })
  client.on('token', () => { throw new Error('listener bug') })
  const reported: unknown[] = []
  const consoleError = console.error
  t.teardown(() => { console.error = consoleError; delete (globalThis as { reportError?: unknown }).reportError })
  console.error = (err: unknown) => { reported.push(['console', (err as Error).message]) }
  client.setTokens({ accessToken: 'a.b.c', expiresIn: 60 })
  ;(globalThis as { reportError?: unknown }).reportError = (err: Error) => { reported.push(['reportError', err.message]) }
  off()
  client.setTokens({ accessToken: 'd.e.f', expiresIn: 60 })
  t.same(seen, ['login'])
  t.same(reported, [['console', 'listener bug'], ['reportError', 'listener bug']])
  t.equal(client.accessToken, 'd.e.f')
})

/**
 * Timers that fire only when told, on Date.now (which the test shifts). A timer is due
 * at the time the client last read plus its delay: the client reads the clock and sets
 * the timer in one synchronous step, so `at` is exactly the due time it computed. A
 * second Date.now() here would add to `at` any pause of this process in between, which
 * a busy machine makes longer than a few milliseconds.
 */
class FakeTimers implements ClientClock {
  readonly pending = new Map<number, { at: number, setAt: number, callback: () => void }>()
  #next = 0
  #lastRead = Date.now()
  now = (): number => (this.#lastRead = Date.now())
  setTimeout = (callback: () => void, ms: number): unknown => {
    const id = ++this.#next
    this.pending.set(id, { at: this.#lastRead + ms, setAt: this.#lastRead, callback })
    return id
  }

  clearTimeout = (handle: unknown): void => { this.pending.delete(handle as number) }
  /** The single pending timer's due time. */
  get dueAt (): number { return [...this.pending.values()][0].at }
  fire (): void {
    const [id, timer] = [...this.pending.entries()][0]
    this.pending.delete(id)
    timer.callback()
  }
}

t.test('refreshBeforeExpiry refreshes shortly before exp, at the latest halfway, and never loops', async t => {
  const { app, advance } = await startApp(t)
  const timers = new FakeTimers()
  const { client, profile } = await signedIn(t, app, { refreshBeforeExpiry: 5000, clock: timers })
  const events = recordEvents(client)
  t.equal(timers.pending.size, 1)
  t.equal(timers.dueAt, (client.expiresAt as number) - 5000, 'due 5 s before exp')
  timers.fire()
  t.equal(timers.pending.size, 1, 'fired early (a clamped long timer): rescheduled, no refresh')
  t.equal(profile.count('POST /auth/refresh'), 0)
  advance(TTL_MS - 5000)
  timers.fire()
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(profile.count('POST /auth/refresh'), 1)
  t.same(events, [['token', 'refresh']])
  t.equal(timers.pending.size, 1, 'the new token is scheduled')

  advance(TTL_MS - 5000)
  profile.failNext = '/auth/refresh'
  timers.fire()
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(client.state, 'authenticated', 'a transient failure is left to the next request')

  const eager = await signedIn(t, app, { refreshBeforeExpiry: 10 * TTL_MS, clock: timers }, new Profile(app))
  const { at, setAt } = [...timers.pending.values()].at(-1) as { at: number, setAt: number }
  t.equal(at, setAt + ((eager.client.expiresAt as number) - setAt) / 2, 'a lead longer than the lifetime waits half of it')
  await eager.client.logout()
  client.close()
  t.equal(timers.pending.size, 0, 'logout and close clear the timers')
})

/** A mutex with the shape of navigator.locks, recording how many holders overlapped. */
class FakeLocks implements LockManagerLike {
  #tail: Promise<unknown> = Promise.resolve()
  held = 0
  maxHeld = 0
  async request<T> (_name: string, callback: (lock: unknown) => Promise<T>): Promise<T> {
    const run = this.#tail.then(async () => {
      this.held++
      this.maxHeld = Math.max(this.maxHeld, this.held)
      try { return await callback({}) } finally { this.held-- }
    })
    this.#tail = run.catch(() => {})
    return await run
  }
}

/** BroadcastChannels of one origin: a message reaches every other member, asynchronously. */
class FakeChannelHub {
  readonly members = new Set<FakeChannel>()
  channel (): FakeChannel {
    const channel = new FakeChannel(this)
    this.members.add(channel)
    return channel
  }
}

class FakeChannel implements BroadcastChannelLike {
  readonly listeners = new Set<(event: { data: unknown }) => void>()
  closed = false
  constructor (readonly hub: FakeChannelHub) {}
  postMessage (message: unknown): void {
    for (const member of this.hub.members) {
      if (member === this) continue
      queueMicrotask(() => { for (const listener of member.listeners) listener({ data: structuredClone(message) }) })
    }
  }

  addEventListener (_type: 'message', listener: (event: { data: unknown }) => void): void { this.listeners.add(listener) }
  removeEventListener (_type: 'message', listener: (event: { data: unknown }) => void): void { this.listeners.delete(listener) }
  close (): void { this.closed = true; this.hub.members.delete(this) }
}

async function tabs (t: Test, app: FastifyInstance, options: { channel: boolean }): Promise<{ a: RevocableJwtClient, b: RevocableJwtClient, profile: Profile, locks: FakeLocks, hub: FakeChannelHub }> {
  const profile = new Profile(app)
  const locks = new FakeLocks()
  const hub = new FakeChannelHub()
  const tab = (): RevocableJwtClient => newClient(t, profile, { locks, channel: options.channel ? hub.channel() : null })
  return { a: tab(), b: tab(), profile, locks, hub }
}

t.test('tabs share one refresh through the lock and the channel', async t => {
  const { app, advance } = await startApp(t)
  const { a, b, profile, locks } = await tabs(t, app, { channel: true })
  const events = recordEvents(b)
  await a.login({ email: await register(app), password: PASSWORD })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(b.accessToken, a.accessToken, 'the login reached the other tab')
  t.same(events, [['token', 'other-tab']])

  advance(TTL_MS + 1000)
  const answers = await Promise.all([a, b, a, b].map(tab => tab.fetch('/me')))
  t.same(await Promise.all(answers.map(status)), ['200', '200', '200', '200'])
  t.equal(profile.count('POST /auth/refresh'), 1, 'one refresh for both tabs')
  t.equal(locks.maxHeld, 1)
  t.equal(b.accessToken, a.accessToken)
})

t.test('without the channel, the lock still serialises the tabs\' refreshes: each presents the rotated cookie', async t => {
  const { app, advance } = await startApp(t)
  const { a, b, profile, locks } = await tabs(t, app, { channel: false })
  await a.login({ email: await register(app), password: PASSWORD })
  t.equal(await b.start(), true)
  advance(TTL_MS + 1000)
  // Past the 2 s grace window: a second refresh presenting the old cookie would be REFRESH_TOKEN_REUSED.
  const release = profile.hold('/auth/refresh')
  const both = Promise.all([a.fetch('/me'), b.fetch('/me')])
  await new Promise(resolve => setTimeout(resolve, 20))
  advance(3000)
  release()
  t.same(await Promise.all((await both).map(status)), ['200', '200'])
  t.equal(profile.count('POST /auth/refresh'), 3, 'start, then one per tab, one at a time')
  t.equal(locks.maxHeld, 1)
})

t.test('a logout reaches the other tabs of its session; logout-all reaches all; stray messages are ignored', async t => {
  const { app } = await startApp(t)
  const { a, b, profile, hub } = await tabs(t, app, { channel: true })
  const email = await register(app)
  await a.login({ email, password: PASSWORD })
  await new Promise(resolve => setImmediate(resolve))
  const events = recordEvents(b)
  const stranger = hub.channel()
  for (const message of [null, 'hello', { type: 'logged-out', sessionId: 'another-session', all: false }, { type: 'token', accessToken: 'old.token.x', expiresAt: 1 }, { type: 'nonsense' }]) {
    stranger.postMessage(message)
  }
  await new Promise(resolve => setImmediate(resolve))
  t.equal(b.accessToken, a.accessToken, 'nothing changed')

  await a.logout()
  await new Promise(resolve => setImmediate(resolve))
  t.equal(b.state, 'logged-out')
  t.same(events, [['logged-out', { reason: 'other-tab', code: null }]])
  t.equal(await status(await b.fetch('/me')), '401 TOKEN_MISSING', 'its next call stays logged out')
  t.equal(profile.count('POST /auth/refresh'), 0)

  await a.login({ email, password: PASSWORD })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(b.state, 'authenticated', 'a login in one tab signs the others in')
  stranger.postMessage({ type: 'token', accessToken: 'x.y.z' })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(b.expiresAt, null, 'a token without expiry is taken as is')
  await a.logoutAll()
  await new Promise(resolve => setImmediate(resolve))
  t.equal(b.state, 'logged-out')
  stranger.postMessage({ type: 'logged-out', sessionId: null, all: true })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(events.filter(([type]) => type === 'logged-out').length, 2, 'one event per transition')
})

t.test('storage is opt-in: the token survives a reload there, expired or corrupt entries are ignored', async t => {
  const { app, advance } = await startApp(t)
  const items = new Map<string, string>()
  const storage: StorageLike = {
    getItem: key => items.get(key) ?? null,
    setItem: (key, value) => { items.set(key, value) },
    removeItem: key => { items.delete(key) }
  }
  const { client, profile } = await signedIn(t, app, { storage, storageKey: 'auth' })
  t.same([...items.keys()], ['auth'])
  const reloaded = newClient(t, profile, { storage, storageKey: 'auth' })
  t.equal(reloaded.accessToken, client.accessToken)
  t.equal(await status(await reloaded.fetch('/me')), '200')
  t.equal(profile.count('POST /auth/refresh'), 0, 'no refresh needed')
  advance(TTL_MS + 1000)
  t.equal(newClient(t, profile, { storage, storageKey: 'auth' }).accessToken, null, 'expired: ignored')
  items.set('auth', '{not json')
  t.equal(newClient(t, profile, { storage, storageKey: 'auth' }).state, 'unknown', 'corrupt: ignored')
  items.set('auth', JSON.stringify({ accessToken: 'a.b.c' }))
  t.equal(newClient(t, profile, { storage, storageKey: 'auth' }).accessToken, 'a.b.c', 'no expiry recorded: kept')
  await client.logout()
  t.equal(items.size, 0, 'logout removes it')
  t.equal(newClient(t, profile).accessToken, null, 'without storage, nothing is read')
})

t.test('in a browser the client uses navigator.locks and its own BroadcastChannel by default', async t => {
  const { app } = await startApp(t)
  const g = globalThis as unknown as { document?: unknown, navigator?: unknown }
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
  t.teardown(() => {
    delete g.document
    if (saved === undefined) delete g.navigator
    else Object.defineProperty(globalThis, 'navigator', saved)
  })
  g.document = {}
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  const profile = new Profile(app)
  const withoutLocks = newClient(t, profile)
  const locks = new FakeLocks()
  Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true })
  const a = newClient(t, profile)
  const b = newClient(t, profile)
  await a.login({ email: await register(app), password: PASSWORD })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(b.accessToken, a.accessToken, 'delivered by a real BroadcastChannel')
  t.equal(withoutLocks.accessToken, a.accessToken)
  await b.refresh()
  t.equal(locks.maxHeld, 1, 'the refresh took navigator.locks')
  const BroadcastChannelCtor = (globalThis as unknown as { BroadcastChannel?: unknown }).BroadcastChannel
  delete (globalThis as unknown as { BroadcastChannel?: unknown }).BroadcastChannel
  t.teardown(() => { (globalThis as unknown as { BroadcastChannel?: unknown }).BroadcastChannel = BroadcastChannelCtor })
  const noChannel = newClient(t, profile)
  noChannel.close()
  t.equal(noChannel.state, 'unknown')
})

t.test('by default the client uses the global fetch and timers', async t => {
  const { app } = await startApp(t)
  const profile = new Profile(app)
  const globalFetch = globalThis.fetch
  t.teardown(() => { globalThis.fetch = globalFetch })
  globalThis.fetch = profile.fetch as typeof globalThis.fetch
  const client = newClient(t, profile, { fetch: undefined, refreshBeforeExpiry: 1000 })
  await client.login({ email: await register(app), password: PASSWORD })
  t.same(profile.calls, ['POST /auth/login'])
  t.ok(client.timeLeft() as number > 0)
  client.close()
})

t.test('the example serves the demo page and the client as JavaScript, same-origin only', async t => {
  const { app } = await startApp(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], 'text/html')
  t.match(page.headers['content-security-policy'], "script-src 'self'")
  t.match(page.body, '<script type="module" src="/demo.js">')
  const client = await app.inject('/client.js')
  t.match(client.headers['content-type'], 'text/javascript')
  t.match(client.body, 'function createClient(')
  t.match(client.body, /export \{[^}]*createClient/)
  t.notMatch(client.body, /\binterface\b/, 'types stripped')
})
