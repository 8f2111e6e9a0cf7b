// The checks every HTTP-client recipe of docs/http-clients.md must pass, over real HTTP,
// on memory and on Redis stores. Each library's test file supplies the recipe, set up
// on a Node cookie jar as the docs show.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { CookieJar } from 'tough-cookie'
import {
  PASSWORD,
  refreshTokenIn,
  startServer,
  waitForExpiry,
  type Server,
  type StoreKind,
  type WireEntry
} from './setup.js'

/** At least 20 rounds of ten concurrent requests with an expired token. */
export const ROUNDS = 20
const CONCURRENT = 10
/** How long the app keeps using the client after the session ended, and how often. */
const KEEP_USING_MS = 2500
const USE_EVERY_MS = 100
/** The grace window of the late-answer test's own server: short, so waiting past it stays cheap. */
const SHORT_GRACE_MS = 1000

/** A recipe's client, as the tests drive it. */
export interface ClientUnderTest {
  login: (email: string, password: string) => Promise<void>
  logout: () => Promise<void>
  refresh: () => Promise<string | null>
  /** `GET /me` through the library's configured instance; resolves to the body. */
  me: () => Promise<unknown>
  readonly accessToken: string | null
}

export interface Library {
  /** A client set up as the docs show, keeping its cookies in `jar`. */
  create: (url: string, jar: CookieJar, onLoggedOut: (reason: string) => void) => ClientUnderTest
  /** The status and `code` of a failed call; status 0 when no answer came. */
  outcome: (error: unknown) => { status: number, code: string | null }
}

type Result = { ok: true, body: unknown } | { ok: false, status: number, code: string | null }

interface Session {
  client: ClientUnderTest
  jar: CookieJar
  email: string
  /** What onLoggedOut reported, in order. */
  reasons: string[]
}

function describe (entries: WireEntry[]): string[] {
  return entries.map(e => `${e.method} ${e.path} ${e.status}${e.code === null ? '' : ` ${e.code}`}`)
}

function tally (results: Result[]): string[] {
  const counts = new Map<string, number>()
  for (const r of results) {
    const key = r.ok ? 'ok' : `${r.status} ${r.code}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([key, n]) => `${key} ×${n}`)
}

export function clientSuite (t: Test, library: Library): void {
  async function call (fn: () => Promise<unknown>): Promise<Result> {
    try {
      return { ok: true, body: await fn() }
    } catch (error) {
      return { ok: false, ...library.outcome(error) }
    }
  }

  function newClient (server: Server, jar: CookieJar, reasons: string[]): ClientUnderTest {
    return library.create(server.url, jar, reason => { reasons.push(reason) })
  }

  async function loggedIn (server: Server, jar = new CookieJar()): Promise<Session> {
    const reasons: string[] = []
    const email = await server.register()
    const client = newClient(server, jar, reasons)
    const login = await call(() => client.login(email, PASSWORD))
    if (!login.ok) throw new Error(`login failed: ${login.status} ${login.code}`)
    return { client, jar, email, reasons }
  }

  /** The app keeps calling `GET /me` every USE_EVERY_MS for KEEP_USING_MS (a poller, not a wait). */
  async function keepUsing (client: ClientUnderTest): Promise<Result[]> {
    const calls: Array<Promise<Result>> = []
    for (const until = Date.now() + KEEP_USING_MS; Date.now() < until; await sleep(USE_EVERY_MS)) {
      calls.push(call(() => client.me()))
    }
    return await Promise.all(calls)
  }

  // The two stores at once, each with its own server: most of the time is spent waiting
  // for access tokens to expire.
  t.jobs = 2
  for (const store of ['memory', 'redis'] as const satisfies StoreKind[]) {
    t.test(`on ${store} stores`, { buffered: true }, async (t) => {
      const server = await startServer(t, store)
      const { wire } = server

      await t.test('logs in, answers GET /me, and a wrong password never triggers a refresh', async (t) => {
        const jar = new CookieJar()
        const reasons: string[] = []
        const client = newClient(server, jar, reasons)
        const email = await server.register()
        let mark = wire.mark()
        t.same(await call(() => client.login(email, 'wrong password')), { ok: false, status: 401, code: 'INVALID_CREDENTIALS' },
          'the login error itself reaches the app')
        t.same(describe(wire.since(mark)), ['POST /auth/login 401 INVALID_CREDENTIALS'], 'one request, no refresh')

        await client.login(email, PASSWORD)
        t.ok(await refreshTokenIn(jar, server.url), 'the jar keeps the Secure refresh cookie of a loopback host')
        mark = wire.mark()
        t.match(await call(() => client.me()), { ok: true, body: { email } })
        t.same(describe(wire.since(mark)), ['GET /me 200'])

        mark = wire.mark()
        t.same(await call(() => client.login(email, 'wrong password')), { ok: false, status: 401, code: 'INVALID_CREDENTIALS' })
        t.same(describe(wire.since(mark)), ['POST /auth/login 401 INVALID_CREDENTIALS'], 'a session in the jar makes no refresh either')
        t.same(reasons, [])
      })

      await t.test('an expired access token is refreshed once and the request retried transparently', async (t) => {
        const { client, email } = await loggedIn(server)
        await waitForExpiry(server, client.accessToken)
        const mark = wire.mark()
        t.match(await call(() => client.me()), { ok: true, body: { email } })
        t.same(describe(wire.since(mark)), ['GET /me 401 TOKEN_EXPIRED', 'POST /auth/refresh 200', 'GET /me 200'])
      })

      await t.test(`ten concurrent requests with an expired token, ${ROUNDS} rounds: one refresh each, no session lost`, async (t) => {
        let session = await loggedIn(server)
        let start = await refreshTokenIn(session.jar, server.url) as string
        const problems: string[] = []
        let refreshes = 0
        let refreshed = 0
        let answered = 0
        let lost = 0
        for (let round = 1; round <= ROUNDS; round++) {
          const { client, jar, email, reasons } = session
          await waitForExpiry(server, client.accessToken)
          const mark = wire.mark()
          const results = await Promise.all(Array.from({ length: CONCURRENT }, () => call(() => client.me())))
          const onTheWire = wire.refreshes(mark)
          refreshes += onTheWire.length
          refreshed += onTheWire.filter(e => e.status === 200).length
          const failed = results.filter(r => !r.ok || (r.body as { email?: string }).email !== email)
          if (failed.length === 0) answered++
          if (failed.length > 0) problems.push(`round ${round}: ${failed.length} of ${CONCURRENT} failed: ${tally(failed).join(', ')}`)
          if (onTheWire.length !== 1 || onTheWire[0]?.status !== 200) problems.push(`round ${round}: refreshes on the wire: ${describe(onTheWire).join(', ') || 'none'}`)
          const meRequests = wire.count(mark, 'GET', '/me')
          if (meRequests !== 2 * CONCURRENT) problems.push(`round ${round}: ${meRequests} GET /me on the wire, expected ${2 * CONCURRENT} (each request once, then its retry)`)
          const after = await call(() => client.me())
          if (!after.ok) problems.push(`round ${round}: GET /me after the round: ${tally([after]).join('')}`)
          // The session survives: no reuse alarm, no logout, and the jar holds its newest refresh token.
          const inJar = await refreshTokenIn(jar, server.url)
          const reused = wire.codes(mark).includes('REFRESH_TOKEN_REUSED')
          if (reused || reasons.length > 0 || inJar !== wire.live(start)) {
            lost++
            problems.push(`round ${round}: session lost (${reused ? 'REFRESH_TOKEN_REUSED; ' : ''}logged out: ${reasons.join(', ') || 'no'}; ` +
              `jar ${inJar === undefined ? 'empty' : inJar === wire.live(start) ? 'live' : 'holds a rotated refresh token'}); logging in again`)
            session = await loggedIn(server)
            start = await refreshTokenIn(session.jar, server.url) as string
          }
        }
        t.comment(`${store}: ${ROUNDS} rounds, ${answered} with all ${CONCURRENT} answered, ` +
          `${refreshes} refreshes on the wire (${refreshed} answered 200), ${lost} sessions lost`)
        t.same(problems, [], 'every round: ten answers, one refresh, the session alive')
      })

      await t.test('logout ends the session on the server; continued use makes one request per call and no refresh', async (t) => {
        const { client, jar, reasons } = await loggedIn(server)
        const refreshToken = await refreshTokenIn(jar, server.url)
        let mark = wire.mark()
        t.same(await call(() => client.logout()), { ok: true, body: undefined })
        t.same(describe(wire.since(mark)), ['POST /auth/logout 204'])
        t.same(reasons, ['logout'], 'the client reports logged-out once')
        t.equal(await refreshTokenIn(jar, server.url), undefined, 'the jar dropped the refresh cookie')
        t.match(await server.probe('/auth/refresh', { method: 'POST', headers: { cookie: `refresh_token=${refreshToken}` } }), { status: 401 },
          'the old refresh token no longer works')

        mark = wire.mark()
        const used = await keepUsing(client)
        t.same(tally(used), [`401 TOKEN_MISSING ×${used.length}`], 'every call fails fast without a token')
        t.equal(wire.since(mark).length, used.length, `${used.length} calls, as many requests`)
        t.same(describe(wire.refreshes(mark)), [], 'no refresh')
        t.same(reasons, ['logout'])
      })

      await t.test('logout with an expired access token renews it once and still ends the session', async (t) => {
        const { client, jar, reasons } = await loggedIn(server)
        const refreshToken = await refreshTokenIn(jar, server.url)
        await waitForExpiry(server, client.accessToken)
        const mark = wire.mark()
        t.same(await call(() => client.logout()), { ok: true, body: undefined })
        t.same(describe(wire.since(mark)), ['POST /auth/logout 401 TOKEN_EXPIRED', 'POST /auth/refresh 200', 'POST /auth/logout 204'])
        t.same(reasons, ['logout'])
        t.match(await server.probe('/auth/refresh', { method: 'POST', headers: { cookie: `refresh_token=${refreshToken}` } }), { status: 401 },
          'no refresh token of the session works any more')
      })

      await t.test('a refused refresh ends the session once: ten requests share one refresh, then no more', async (t) => {
        const { client, email, reasons } = await loggedIn(server)
        await waitForExpiry(server, client.accessToken)
        // Meanwhile the user logs out everywhere from another device.
        const other = await server.probe('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
        const { accessToken } = other.body as { accessToken: string }
        t.equal((await server.probe('/auth/logout-all', { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } })).status, 204)

        let mark = wire.mark()
        const results = await Promise.all(Array.from({ length: CONCURRENT }, () => call(() => client.me())))
        t.same(tally(results), [`401 TOKEN_EXPIRED ×${CONCURRENT}`], 'the requests fail with their own 401')
        t.match(describe(wire.refreshes(mark)), [/^POST \/auth\/refresh 401 REFRESH_TOKEN_/], 'one refresh, refused')
        t.match(reasons, [/^REFRESH_TOKEN_/], 'the client reports logged-out once, with the code')
        t.equal(client.accessToken, null)

        mark = wire.mark()
        const used = await keepUsing(client)
        t.same(tally(used), [`401 TOKEN_MISSING ×${used.length}`])
        t.equal(wire.since(mark).length, used.length, `${used.length} calls, as many requests`)
        t.same(describe(wire.refreshes(mark)), [], 'no refresh')
        t.equal(reasons.length, 1)
      })

      await t.test('tabs sharing one cookie jar: a refresh answered late, after another tab rotated again, keeps the session', async (t) => {
        // Tabs share the browser's cookies but not the recipe's in-flight refresh, so two
        // tabs can refresh with the same cookie; the server's grace window must keep them
        // all on the session's live refresh token. Its own server, with a 1 s window.
        const graced = await startServer(t, store, { REFRESH_REUSE_GRACE: `${SHORT_GRACE_MS / 1000}s` })
        const jar = new CookieJar()
        const reasons: string[] = []
        const email = await graced.register()
        const [a, b, c] = [0, 1, 2].map(() => newClient(graced, jar, reasons)) as [ClientUnderTest, ClientUnderTest, ClientUnderTest]
        const started = [await call(() => a.login(email, PASSWORD)), await call(() => b.refresh()), await call(() => c.refresh())]
        t.match(started, [{ ok: true }, { ok: true, body: String }, { ok: true, body: String }], 'tab a logs in, tabs b and c start from the cookie')
        if (!started.every(r => r.ok)) return
        for (const tab of [a, b, c]) await waitForExpiry(graced, tab.accessToken)

        const mark = graced.wire.mark()
        const held = graced.wire.hold('/auth/refresh')
        const late = call(() => a.me()) // its refresh presents the live token, then waits
        await held.arrived
        t.match(await call(() => b.me()), { ok: true, body: { email } }, 'tab b refreshes with the same token')
        t.match(await call(() => c.me()), { ok: true, body: { email } }, 'tab c refreshes with the token b received')
        held.release()
        t.match(await late, { ok: true, body: { email } }, 'tab a gets the late grace answer')
        const answer = graced.wire.refreshes(mark)[0]
        t.notOk(graced.wire.rotated(answer?.issued), 'the late answer hands back a refresh token that is still live, not one already rotated')

        // Once every grace window has closed, the token in the jar must still be the live one.
        const lastAnswer = Math.max(...graced.wire.refreshes(mark).map(e => e.answeredAt))
        await sleep(Math.max(0, lastAnswer + SHORT_GRACE_MS + 1 - Date.now()))
        const after = graced.wire.mark()
        t.match(await call(() => a.refresh()), { ok: true, body: String }, 'a refresh after the grace window succeeds')
        t.same(describe(graced.wire.refreshes(after)), ['POST /auth/refresh 200'])
        t.same(reasons, [], 'no tab was logged out')
      })
    })
  }
}
