// The example's server-rendered area (DESIGN.md, "Server-rendered pages"), row by row,
// over HTTP through build(): cookies, silent refresh, concurrency, reuse, CSRF.
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { escapeHtml } from '../example/pages.js'
import { TEST_SECRET, TestClock, build, testSigner } from './helper.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const PASSWORD = 'correct horse battery'
const ACCESS = 'page_access_token'
const REFRESH = 'page_refresh_token'

type PageCookies = Record<string, string>

let users = 0

function form (fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

function cookieOf (res: LightMyRequestResponse, name: string): string | undefined {
  return res.cookies.find(c => c.name === name)?.value
}

/** The cookies a response set, as the browser would send them next. */
function pageCookies (res: LightMyRequestResponse): PageCookies {
  return { [ACCESS]: cookieOf(res, ACCESS) as string, [REFRESH]: cookieOf(res, REFRESH) as string }
}

async function register (app: FastifyInstance): Promise<{ email: string, userId: string }> {
  const email = `page${++users}-${process.pid}@example.com`
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  return { email, userId: res.json().id }
}

async function signIn (app: FastifyInstance): Promise<{ email: string, userId: string, cookies: PageCookies }> {
  const user = await register(app)
  const res = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: user.email, password: PASSWORD }) })
  if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`)
  return { ...user, cookies: pageCookies(res) }
}

function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
}

/** The session's access token as it would be had it expired a minute ago (same user, session and version). */
function expired (accessToken: string): string {
  const { sub, sid, ver } = claimsOf(accessToken)
  const past = Math.floor(Date.now() / 1000) - 60
  return testSigner({ key: TEST_SECRET, typ: 'at+jwt' })({ sub, sid, ver, jti: `expired-${past}`, iat: past - 900, exp: past })
}

function account (app: FastifyInstance, cookies: Partial<PageCookies>, headers: Record<string, string> = {}) {
  return app.inject({ url: '/app/account', cookies: cookies as Record<string, string>, headers })
}

function assertSignedInPage (t: Test, res: LightMyRequestResponse, email: string, message: string): void {
  t.equal(res.statusCode, 200, message)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.body, `Signed in as <strong id="email">${email}</strong>`, message)
}

function assertToLogin (t: Test, res: LightMyRequestResponse, message: string): void {
  t.equal(res.statusCode, 303, message)
  t.equal(res.headers.location, '/app/login', message)
}

/** Count the events that would betray a fork or a false alarm. */
function watchAlarms (app: FastifyInstance): { reused: number, revoked: number } {
  const seen = { reused: 0, revoked: 0 }
  app.revocableJwt.events.on('refreshTokenReused', () => { seen.reused++ })
  app.revocableJwt.events.on('sessionRevoked', () => { seen.revoked++ })
  return seen
}

t.test('GET /app/login is an HTML form posting email and password to /app/login', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/app/login' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  t.match(res.body, '<form method="post" action="/app/login">')
  t.match(res.body, 'name="email"')
  t.match(res.body, 'name="password"')
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.headers['content-security-policy'], "default-src 'none'")
  t.same(res.cookies, [], 'no cookie for a guest without CSRF_TOKENS')
})

t.test('POST /app/login: 303 to /app/account with both cookies, HttpOnly, Secure, SameSite=Lax, scoped to /app', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const user = await register(app)
  const res = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: user.email.toUpperCase(), password: PASSWORD }) })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/app/account')
  t.equal(res.headers['cache-control'], 'no-store')
  const access = res.cookies.find(c => c.name === ACCESS)
  const refresh = res.cookies.find(c => c.name === REFRESH)
  t.match(access, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/app', maxAge: 900 })
  t.match(refresh, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/app', maxAge: 7 * 24 * 3600 })
  t.equal(res.cookies.find(c => c.name === 'refresh_token'), undefined, 'the refresh routes\' cookie is not set: each transport keeps its own session')
  t.equal(claimsOf(access?.value as string).sub, user.userId)
  const secretPart = (refresh?.value ?? '').split('.').at(-1) as string
  t.ok(Buffer.from(secretPart, 'base64url').length >= 32, 'the refresh cookie holds at least 256 bits of randomness')

  const page = await account(app, pageCookies(res))
  assertSignedInPage(t, page, user.email, 'the account page shows the user')
  t.same(page.cookies, [], 'a live access cookie: nothing rotated')
  t.equal(page.headers['cache-control'], 'no-store')

  const insecure = await build({ env: { COOKIE_SECURE: 'false' } })
  t.teardown(() => insecure.close())
  const plain = await signIn(insecure)
  t.ok(plain.cookies[ACCESS])
  const again = await insecure.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: plain.email, password: PASSWORD }) })
  t.same(again.cookies.map(c => c.secure), [undefined, undefined], 'COOKIE_SECURE=false turns Secure off for both')
})

t.test('POST /app/login failures: 401 form again (escaped), 400 for a malformed form, no cookie, no session', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const user = await register(app)
  const wrong = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: user.email, password: 'wrong password' }) })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.headers['content-type'], /^text\/html/)
  t.match(wrong.body, '<form method="post" action="/app/login">')
  t.match(wrong.body, 'Invalid email or password.')
  t.same(wrong.cookies, [])
  const unknown = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: 'nobody@example.com', password: PASSWORD }) })
  t.equal(unknown.statusCode, 401)

  const hostile = '"><script>alert(1)</script>'
  const echoed = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: hostile, password: 'x' }) })
  t.equal(echoed.statusCode, 401)
  t.notMatch(echoed.body, '<script>', 'what the user typed is escaped')
  t.match(echoed.body, 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
  t.equal(escapeHtml('<a href="x">&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;')

  for (const [name, payload] of [
    ['no password', form({ email: user.email })],
    ['two emails', `email=${encodeURIComponent(user.email)}&email=b%40example.com&password=x`],
    ['empty body', '']
  ]) {
    const res = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload })
    t.equal(res.statusCode, 400, name)
    t.match(res.body, '<form method="post" action="/app/login">', name)
  }
  t.same(await app.revocableJwt.listSessions(user.userId), [], 'no session was started')
})

t.test('POST /app/login shares the login limiter with POST /auth/login', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const user = await register(app)
  const ip = '10.0.0.7'
  for (let i = 0; i < 3; i++) {
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: 'wrong' }, remoteAddress: ip })).statusCode, 401)
  }
  for (let i = 0; i < 2; i++) {
    t.equal((await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: user.email, password: 'wrong' }), remoteAddress: ip })).statusCode, 401)
  }
  const blocked = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: user.email, password: PASSWORD }), remoteAddress: ip })
  t.equal(blocked.statusCode, 429, 'five failures across both forms: even the right password waits')
  t.match(blocked.body, 'Too many failed sign-ins')
  t.ok(Number(blocked.headers['retry-after']) >= 1)
  t.same(blocked.cookies, [])
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD }, remoteAddress: ip })).statusCode, 429, 'and the JSON login too')
  const other = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: user.email, password: PASSWORD }), remoteAddress: '10.0.0.8' })
  t.equal(other.statusCode, 303, 'another client is not locked out')
})

t.test('GET /app/account without a valid session: 303 to /app/login', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const { cookies } = await signIn(app)
  assertToLogin(t, await account(app, {}), 'no cookie')
  const garbage = await account(app, { [ACCESS]: 'not.a.jwt' })
  assertToLogin(t, garbage, 'an invalid access cookie')
  t.equal(cookieOf(garbage, ACCESS), '', 'and it is cleared')
  const forged = testSigner({ key: 'another-secret-another-secret-another!', typ: 'at+jwt', expiresIn: 60_000 })({ ...claimsOf(cookies[ACCESS]), iat: undefined, exp: undefined })
  assertToLogin(t, await account(app, { [ACCESS]: forged, [REFRESH]: cookies[REFRESH] }), 'a forged access cookie is not refreshed away')
  assertToLogin(t, await account(app, { [REFRESH]: 'garbage' }), 'a garbage refresh cookie')
  assertToLogin(t, await account(app, { [ACCESS]: expired(cookies[ACCESS]) }), 'an expired access cookie and no refresh cookie')
  assertToLogin(t, await account(app, { refresh_token: cookies[REFRESH] }), 'the pages do not read the refresh routes\' cookie')
})

t.test('an expired access cookie with a valid refresh cookie: 200, a new access cookie and the rotated refresh cookie', async (t) => {
  const clock = new TestClock()
  const app = await build({ now: clock.now })
  t.teardown(() => app.close())
  const { email, userId, cookies } = await signIn(app)

  let refresh = cookies[REFRESH]
  for (const name of ['expired', 'missing'] as const) {
    // An expired cookie reaches the server when clocks differ; a browser drops one past its Max-Age.
    const sent = name === 'expired' ? { [ACCESS]: expired(cookies[ACCESS]), [REFRESH]: refresh } : { [REFRESH]: refresh }
    const res = await account(app, sent)
    assertSignedInPage(t, res, email, `${name} access cookie: the page is served`)
    const next = pageCookies(res)
    t.ok(next[ACCESS], 'a new access cookie')
    t.ok(next[REFRESH] !== undefined && next[REFRESH] !== refresh, 'the rotated refresh cookie')
    t.match(res.cookies.find(c => c.name === ACCESS), { httpOnly: true, secure: true, sameSite: 'Lax', path: '/app', maxAge: 900 })
    t.match(res.cookies.find(c => c.name === REFRESH), { httpOnly: true, secure: true, sameSite: 'Lax', path: '/app', maxAge: 7 * 24 * 3600 })
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(claimsOf(next[ACCESS]).sid, claimsOf(cookies[ACCESS]).sid, 'the same session')
    const direct = await account(app, next)
    assertSignedInPage(t, direct, email, 'the new access cookie works')
    t.same(direct.cookies, [], 'and needs no refresh')
    refresh = next[REFRESH]
    clock.advance(60_000)
  }
  t.equal((await app.revocableJwt.listSessions(userId)).length, 1, 'one session throughout')
})

t.test('ten concurrent page loads with the same expired cookies all get 200 and the same rotated child, which keeps working: 20 rounds, no fork, no alarm', async (t) => {
  const clock = new TestClock()
  const app = await build({ now: clock.now })
  t.teardown(() => app.close())
  const alarms = watchAlarms(app)
  const { email, userId, cookies } = await signIn(app)
  const { sid } = claimsOf(cookies[ACCESS])
  let refresh = cookies[REFRESH]
  let access = cookies[ACCESS]
  const ROUNDS = 20
  const PARALLEL = 10

  for (let round = 1; round <= ROUNDS; round++) {
    const sent = { [ACCESS]: expired(access), [REFRESH]: refresh }
    const answers = await Promise.all(Array.from({ length: PARALLEL }, () => account(app, sent)))
    t.same(answers.map(res => res.statusCode), Array(PARALLEL).fill(200), `round ${round}: every load is served`)
    for (const res of answers) t.match(res.body, email)
    const children = new Set(answers.map(res => cookieOf(res, REFRESH)))
    t.equal(children.size, 1, `round ${round}: one rotated child for all ${PARALLEL}`)
    const [child] = children as Set<string>
    t.ok(child !== undefined && child !== refresh, `round ${round}: rotated`)
    t.ok(answers.every(res => claimsOf(cookieOf(res, ACCESS) as string).sid === sid), `round ${round}: every new access token is of the same session`)
    // Past the grace window the child would be taken for theft, were it not the live token.
    clock.advance(11_000)
    refresh = child
    access = cookieOf(answers[PARALLEL - 1], ACCESS) as string
    t.equal((await app.revocableJwt.listSessions(userId)).length, 1, `round ${round}: one session`)
  }
  const last = await account(app, { [ACCESS]: expired(access), [REFRESH]: refresh })
  assertSignedInPage(t, last, email, 'the last child still works after the grace window')
  t.same(alarms, { reused: 0, revoked: 0 }, 'no reuse alarm and no session revoked')
  t.comment(`${ROUNDS} rounds of ${PARALLEL} concurrent loads: reuse alarms ${alarms.reused}, sessions revoked ${alarms.revoked}`)
})

t.test('a refresh cookie presented again after the grace window revokes the session, as the refresh route does', async (t) => {
  const clock = new TestClock()
  const app = await build({ now: clock.now })
  t.teardown(() => app.close())
  const alarms = watchAlarms(app)
  const { email, cookies } = await signIn(app)
  const first = await account(app, { [ACCESS]: expired(cookies[ACCESS]), [REFRESH]: cookies[REFRESH] })
  assertSignedInPage(t, first, email, 'the first load rotates')
  const rotated = pageCookies(first)

  clock.advance(5_000)
  const withinGrace = await account(app, { [ACCESS]: expired(cookies[ACCESS]), [REFRESH]: cookies[REFRESH] })
  assertSignedInPage(t, withinGrace, email, 'within the grace window: served')
  t.equal(cookieOf(withinGrace, REFRESH), rotated[REFRESH], 'with the same child')

  clock.advance(10_000)
  const reused = await account(app, { [ACCESS]: expired(cookies[ACCESS]), [REFRESH]: cookies[REFRESH] })
  assertToLogin(t, reused, 'after it: to the login page')
  t.equal(cookieOf(reused, REFRESH), '', 'the refresh cookie is cleared')
  t.equal(alarms.reused, 1, 'the reuse alarm is raised once')

  assertToLogin(t, await account(app, { [ACCESS]: expired(rotated[ACCESS]), [REFRESH]: rotated[REFRESH] }), 'the newest refresh cookie of the session stops working')
  const revoked = await account(app, rotated)
  assertToLogin(t, revoked, 'and so do its access tokens')
  t.equal(cookieOf(revoked, ACCESS), '', 'a revoked access cookie is cleared')
})

t.test('POST /app/logout: 303 to /app/login, both cookies cleared, the session revoked; replaying the old cookies leads to /app/login', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const { email, userId, cookies } = await signIn(app)
  const other = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email, password: PASSWORD }) })
  const res = await app.inject({ method: 'POST', url: '/app/logout', cookies: { ...cookies } })
  assertToLogin(t, res, 'logout')
  for (const name of [ACCESS, REFRESH]) t.match(res.cookies.find(c => c.name === name), { value: '', path: '/app', httpOnly: true }, `${name} cleared`)
  assertToLogin(t, await account(app, cookies), 'the old cookies: to the login page')
  assertToLogin(t, await account(app, { [REFRESH]: cookies[REFRESH] }), 'the old refresh cookie alone too')
  assertToLogin(t, await account(app, { [ACCESS]: expired(cookies[ACCESS]), [REFRESH]: cookies[REFRESH] }), 'an expired access cookie with it too')
  assertSignedInPage(t, await account(app, pageCookies(other)), email, 'the other browser keeps its session')
  t.equal((await app.revocableJwt.listSessions(userId)).length, 1)

  const anonymous = await app.inject({ method: 'POST', url: '/app/logout' })
  assertToLogin(t, anonymous, 'logging out without a session also ends at the login page')
  t.same(anonymous.cookies.map(c => [c.name, c.value]), [[ACCESS, ''], [REFRESH, '']], 'with both cookies cleared')
})

t.test('a cross-site post is 403 CROSS_SITE_REQUEST and changes nothing', async (t) => {
  const clock = new TestClock()
  const app = await build({ now: clock.now, env: { ALLOWED_ORIGINS: 'https://partner.example' } })
  t.teardown(() => app.close())
  const alarms = watchAlarms(app)
  const { email, userId, cookies } = await signIn(app)
  // An expired access cookie: a post that got past the check would rotate the refresh cookie.
  const sent = { [ACCESS]: expired(cookies[ACCESS]), [REFRESH]: cookies[REFRESH] }
  for (const [name, headers] of [
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['a sibling origin of the same site', { origin: 'http://other.localhost:80' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: cross-site with our own Origin', { 'sec-fetch-site': 'cross-site', origin: 'http://localhost:80' }]
  ] as const) {
    for (const url of ['/app/logout', '/app/login']) {
      const res = await app.inject({ method: 'POST', url, cookies: sent, headers: { ...FORM, ...headers }, payload: form({ email, password: PASSWORD }) })
      t.equal(res.statusCode, 403, `${name} → ${url}`)
      t.equal(res.json().code, 'CROSS_SITE_REQUEST', `${name} → ${url}`)
      t.same(res.cookies, [], `${name} → ${url}: no cookie set or cleared`)
    }
  }
  t.equal((await app.revocableJwt.listSessions(userId)).length, 1, 'no session started by the cross-site login posts, none ended by the logouts')
  clock.advance(60_000)
  const after = await account(app, sent)
  assertSignedInPage(t, after, email, 'the refresh cookie was never rotated: past any grace window it is still the live one')
  t.same(alarms, { reused: 0, revoked: 0 })

  const fresh = pageCookies(after)
  const own = await app.inject({ method: 'POST', url: '/app/logout', cookies: fresh, headers: { origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' } })
  assertToLogin(t, own, 'our own origin may post')
  const partner = await signIn(app)
  assertToLogin(t, await app.inject({ method: 'POST', url: '/app/logout', cookies: partner.cookies, headers: { origin: 'https://partner.example' } }), 'an allowed origin may post')
  const navigation = await account(app, partner.cookies, { 'sec-fetch-site': 'cross-site' })
  assertToLogin(t, navigation, 'a GET is never refused for its site (a link from elsewhere): here the session just ended')
})

t.test('CSRF_TOKENS=true: every form carries a double-submit token bound to the session, required on every post', async (t) => {
  const app = await build({ env: { CSRF_TOKENS: 'true' } })
  t.teardown(() => app.close())
  const user = await register(app)
  const loginPage = await app.inject({ url: '/app/login' })
  const loginToken = /name="_csrf" value="([^"]+)"/.exec(loginPage.body)?.[1] as string
  t.ok(loginToken, 'the login form carries a token')
  const secret = loginPage.cookies.find(c => c.name === 'page_csrf')
  t.match(secret, { httpOnly: true, path: '/app', sameSite: 'Lax', secure: true })
  const csrfCookie = { page_csrf: secret?.value as string }

  const without = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, cookies: csrfCookie, payload: form({ email: user.email, password: PASSWORD }) })
  t.equal(without.statusCode, 403)
  t.equal(without.json().code, 'FST_CSRF_INVALID_TOKEN')
  const noSecret = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form({ email: user.email, password: PASSWORD, _csrf: loginToken }) })
  t.equal(noSecret.json().code, 'FST_CSRF_MISSING_SECRET')
  const login = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, cookies: csrfCookie, payload: form({ email: user.email, password: PASSWORD, _csrf: loginToken }) })
  t.equal(login.statusCode, 303)
  const cookies = { ...pageCookies(login), ...csrfCookie }

  const page = await account(app, cookies)
  const sessionToken = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] as string
  t.ok(sessionToken, 'the logout form carries a token')
  for (const [name, token] of [['none', undefined], ['the login form\'s (not bound to this session)', loginToken], ['garbage', 'x-y-z']] as const) {
    const res = await app.inject({ method: 'POST', url: '/app/logout', headers: FORM, cookies, payload: token === undefined ? '' : form({ _csrf: token }) })
    t.equal(res.statusCode, 403, name)
    t.equal(res.json().code, 'FST_CSRF_INVALID_TOKEN', name)
  }
  assertSignedInPage(t, await account(app, cookies), user.email, 'the refused logouts changed nothing')
  const other = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, cookies: csrfCookie, payload: form({ email: user.email, password: PASSWORD, _csrf: loginToken }) })
  const otherToken = /name="_csrf" value="([^"]+)"/.exec((await account(app, { ...pageCookies(other), ...csrfCookie })).body)?.[1] as string
  t.equal((await app.inject({ method: 'POST', url: '/app/logout', headers: FORM, cookies, payload: form({ _csrf: otherToken }) })).statusCode, 403, 'another session\'s token is refused')
  assertToLogin(t, await app.inject({ method: 'POST', url: '/app/logout', headers: FORM, cookies, payload: form({ _csrf: sessionToken }) }), 'with its token, the logout goes through')
  assertToLogin(t, await account(app, cookies), 'and the session is over')
})
