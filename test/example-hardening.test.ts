// The example's defences against an attacker with an account, many addresses or a
// forged header (DESIGN.md: strict bodies, login throttling, rate limits), through build().
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { parseTrustProxy } from '../example/app.js'
import { MemoryUserRegistry } from '../example/users.js'
import { TestClock, bearer, build, refreshCookie, registerAndLogin } from './helper.js'

const PASSWORD = 'right password'

async function register (app: FastifyInstance, email: string, remoteAddress = '10.9.9.9'): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD }, remoteAddress })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
}

t.test('bodies are validated strictly: a field of the wrong type is a 400 and changes nothing', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const session = await registerAndLogin(app, 'old password')
  for (const [url, payload] of [
    ['/auth/register', { email: ['new@example.com'], password: 'long enough' }],
    ['/auth/register', { email: 'new@example.com', password: ['long enough'] }],
    ['/auth/register', { email: 'new@example.com', password: 12345678901 }],
    ['/auth/login', { email: [session.email], password: 'old password' }],
    ['/auth/login', { email: session.email, password: ['old password'] }],
    ['/auth/login', { email: session.email, password: true }]
  ] as const) {
    const res = await app.inject({ method: 'POST', url, payload })
    t.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload)}`)
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
    t.equal(refreshCookie(res), undefined, 'no session')
  }
  const change = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(session.accessToken), payload: { currentPassword: ['old password'], newPassword: 'new password' } })
  t.equal(change.statusCode, 400)
  t.equal(change.json().code, 'FST_ERR_VALIDATION')
  t.equal((await app.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode, 200, 'the password did not change')
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'new@example.com', password: 'long enough' } })
  t.equal(unknown.json().code, 'INVALID_CREDENTIALS', 'no account was created')
})

t.test('TRUST_PROXY accepts a hop count or proxy addresses, and refuses true', async (t) => {
  t.equal(parseTrustProxy(undefined), false)
  t.equal(parseTrustProxy('false'), false)
  t.equal(parseTrustProxy('0'), false)
  t.equal(parseTrustProxy('2'), 2)
  t.same(parseTrustProxy('10.0.0.1, 10.1.0.0/16,::1,loopback'), ['10.0.0.1', '10.1.0.0/16', '::1', 'loopback'])
  t.throws(() => parseTrustProxy('true'), { message: /^TRUST_PROXY=true would trust every X-Forwarded-For entry/ })
  for (const bad of ['proxy.example.com', '10.0.0.1/33', '10.0.0.1/8/8', '*']) {
    t.throws(() => parseTrustProxy(bad), { message: `TRUST_PROXY must be a hop count or a comma list of proxy addresses or CIDR ranges, got ${JSON.stringify(bad)}` }, bad)
  }
  await t.rejects(build({ env: { TRUST_PROXY: 'true' } }), { message: /^TRUST_PROXY=true/ }, 'the service does not start')
})

t.test('behind a trusted proxy, a forged X-Forwarded-For does not reset the login limit', async (t) => {
  const app = await build({ env: { TRUST_PROXY: '1' } })
  t.teardown(() => app.close())
  await register(app, 'xff@example.com')
  const codes: number[] = []
  for (let i = 0; i < 8; i++) {
    // The proxy (the socket's peer) appends the client's real address; the client wrote the rest.
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'xff@example.com', password: 'wrong' }, remoteAddress: '192.168.0.2', headers: { 'x-forwarded-for': `203.0.113.${i}, 198.51.100.7` } })
    codes.push(res.statusCode)
  }
  t.same(codes, [401, 401, 401, 401, 401, 429, 429, 429])
  const v6 = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'xff@example.com', password: 'wrong' }, remoteAddress: '192.168.0.2', headers: { 'x-forwarded-for': '2001:db8:1:2::1' } })
  t.equal(v6.statusCode, 401)
  for (let i = 2; i < 6; i++) await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'xff@example.com', password: 'wrong' }, remoteAddress: '192.168.0.2', headers: { 'x-forwarded-for': `2001:db8:1:2::${i}` } })
  const sameSubnet = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'xff@example.com', password: 'wrong' }, remoteAddress: '192.168.0.2', headers: { 'x-forwarded-for': '2001:db8:1:2:ffff::9' } })
  t.equal(sameSubnet.statusCode, 429, 'an IPv6 client is its /64: rotating addresses within it gains nothing')
  const otherClient = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'xff@example.com', password: PASSWORD }, remoteAddress: '192.168.0.2', headers: { 'x-forwarded-for': '198.51.100.8' } })
  t.equal(otherClient.statusCode, 200, 'the client is the address the proxy appended, not the proxy: another client is not locked out')
})

t.test('an account-wide failure limit holds across addresses, spares clients the owner signed in from, and ends with its window', async (t) => {
  const clock = new TestClock()
  const app = await build({ now: clock.now, credentialRateLimits: { perClient: 100, overall: 1000 } })
  t.teardown(() => app.close())
  await register(app, 'spray@example.com')
  const attempt = (password: string, remoteAddress: string) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'spray@example.com', password }, remoteAddress })
  t.equal((await attempt(PASSWORD, '10.0.0.1')).statusCode, 200, 'the owner signs in from home')

  const codes: number[] = []
  for (let i = 0; i < 24; i++) codes.push((await attempt('guess', `10.1.0.${i}`)).statusCode)
  t.equal(codes.filter(c => c === 401).length, 20, 'twenty guesses from all addresses together were checked')
  t.same(codes.slice(20), [429, 429, 429, 429], 'a fresh address gains nothing')
  t.equal((await attempt(PASSWORD, '10.2.0.1')).statusCode, 429, 'an unknown client waits, even with the right password')
  t.equal((await attempt(PASSWORD, '10.0.0.1')).statusCode, 200, 'the owner, from a client that signed in before, is not locked out')
  clock.advance(15 * 60_000)
  t.equal((await attempt(PASSWORD, '10.2.0.1')).statusCode, 200, 'the lock ends with its window')
})

t.test('successes never count: concurrent and repeated right passwords all succeed; concurrent guesses still meet the limit', async (t) => {
  const app = await build({ credentialRateLimits: { perClient: 100, overall: 1000 } })
  t.teardown(() => app.close())
  await register(app, 'busy@example.com')
  const attempt = (password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'busy@example.com', password } })

  const concurrent = await Promise.all(Array.from({ length: 10 }, () => attempt(PASSWORD)))
  t.same(concurrent.map(r => r.statusCode), Array(10).fill(200), 'ten concurrent right passwords from one client')
  for (let i = 0; i < 4; i++) t.equal((await attempt('typo')).statusCode, 401)
  for (let i = 0; i < 5; i++) t.equal((await attempt(PASSWORD)).statusCode, 200, 'successes after failures do not add to them')
  t.equal((await attempt('typo')).statusCode, 401, 'the fifth failure is still checked')
  t.equal((await attempt(PASSWORD)).statusCode, 429, 'five failures: now the limit holds')

  await register(app, 'mixed@example.com')
  const mixed = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'mixed@example.com', password: i % 2 === 0 ? 'guess' : PASSWORD } })))
  const codes = mixed.map(r => r.statusCode)
  t.equal(codes.filter(c => c === 401).length, 5, 'exactly five concurrent guesses were checked')
  t.same(codes.filter((c, i) => i % 2 === 1 && c !== 200 && c !== 429), [], 'right passwords succeed or wait, never fail')
})

t.test('per-client and overall request limits on register and login, before any password is hashed', async (t) => {
  const users = new MemoryUserRegistry()
  const app = await build({ users, credentialRateLimits: { perClient: 3, overall: 5 } })
  t.teardown(() => app.close())
  const req = (url: string, email: string, remoteAddress: string) =>
    app.inject({ method: 'POST', url, payload: { email, password: PASSWORD }, remoteAddress })

  t.equal((await req('/auth/register', 'a@example.com', '10.0.0.1')).statusCode, 201)
  t.equal((await req('/auth/login', 'a@example.com', '10.0.0.1')).statusCode, 200)
  t.equal((await req('/auth/login', 'b@example.com', '10.0.0.1')).statusCode, 401)
  const limited = await req('/auth/register', 'c@example.com', '10.0.0.1')
  t.equal(limited.statusCode, 429, 'the fourth request of one client')
  t.equal(limited.json().code, 'TOO_MANY_REQUESTS')
  t.ok(Number(limited.headers['retry-after']) >= 1 && Number(limited.headers['retry-after']) <= 60, 'retry-after')
  t.equal((await req('/auth/login', 'a@example.com', '10.0.0.2')).statusCode, 200, 'another client still may')
  t.equal((await req('/auth/login', 'a@example.com', '10.0.0.3')).statusCode, 200, 'the fifth request let through overall')
  const overall = await req('/auth/login', 'a@example.com', '10.0.0.4')
  t.equal(overall.statusCode, 429, 'the sixth, from a fresh client')
  t.equal(overall.json().code, 'TOO_MANY_REQUESTS')
  t.equal((await app.inject({ url: '/auth/sessions' })).json().code, 'TOKEN_MISSING', 'other routes are not limited')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'c@example.com', password: 'other password' }, remoteAddress: '10.0.0.5' })).statusCode, 429)
  t.equal(await users.findByEmail('c@example.com'), null, 'a refused register created nothing')
})

t.test('a login that checked the old password while it changed does not outlive the change', async (t) => {
  // The login reads the user (the old hash) and is held there until the change is done.
  let held: () => void = () => {}
  let resume: () => void = () => {}
  const reached = new Promise<void>(resolve => { held = resolve })
  const release = new Promise<void>(resolve => { resume = resolve })
  const users = new MemoryUserRegistry()
  const findById = users.findById.bind(users)
  let hold = false
  users.findById = async (id: string) => {
    const user = await findById(id)
    if (hold) {
      hold = false
      held()
      await release
    }
    return user
  }
  const app = await build({ users })
  t.teardown(() => app.close())
  const session = await registerAndLogin(app, 'old password')

  hold = true
  const racing = app.inject({ method: 'POST', url: '/auth/login', payload: { email: session.email, password: 'old password' } })
  await reached
  const change = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(session.accessToken), payload: { currentPassword: 'old password', newPassword: 'new password' } })
  t.equal(change.statusCode, 200)
  resume()
  const raced = await racing
  t.equal(raced.statusCode, 200, 'the old password was right when it was checked')
  t.equal((await app.inject({ url: '/me', headers: bearer(raced.json().accessToken) })).json().code, 'TOKEN_REVOKED', 'its access token is refused')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookie(raced) as string } })).json().code, 'REFRESH_TOKEN_INVALID', 'and its refresh token')
  t.equal((await app.inject({ url: '/me', headers: bearer(change.json().accessToken) })).statusCode, 200, 'the tokens the change returned work')
})

t.test('the /app login form shares the request limits with the JSON routes', async (t) => {
  const app = await build({ credentialRateLimits: { perClient: 2, overall: 100 } })
  t.teardown(() => app.close())
  const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
  const form = (password: string) => `email=nobody%40example.com&password=${password}`
  t.equal((await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form('a'), remoteAddress: '10.6.0.1' })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: 'b' }, remoteAddress: '10.6.0.1' })).statusCode, 401)
  const limited = await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form('c'), remoteAddress: '10.6.0.1' })
  t.equal(limited.statusCode, 429)
  t.match(limited.body, 'Too many sign-in requests')
  t.ok(Number(limited.headers['retry-after']) >= 1, 'retry-after')
  t.equal((await app.inject({ method: 'POST', url: '/app/login', headers: FORM, payload: form('d'), remoteAddress: '10.6.0.2' })).statusCode, 401, 'another client may')
})

t.test('duration variables: empty is unset, a malformed or out-of-range value stops the boot naming the variable', async (t) => {
  const app = await build({ env: { ACCESS_TOKEN_TTL: '', REFRESH_TOKEN_TTL: '', REFRESH_REUSE_GRACE: '' } })
  t.teardown(() => app.close())
  const { accessToken } = await registerAndLogin(app)
  const claims = await app.revocableJwt.verifyAccessToken(accessToken)
  t.equal(claims.exp - claims.iat, 900, 'the 15-minute default')
  for (const [name, value, message] of [
    ['ACCESS_TOKEN_TTL', 'soon', /^ACCESS_TOKEN_TTL must be a number of seconds/],
    ['REFRESH_REUSE_GRACE', '2m', /^REFRESH_REUSE_GRACE: refreshReuseGrace must be at most/],
    ['ACCESS_TOKEN_TTL', '2d', /^ACCESS_TOKEN_TTL: accessTokenTtl must be at most/],
    ['REFRESH_TOKEN_TTL', '0', /^REFRESH_TOKEN_TTL: refreshTokenTtl /]
  ] as const) {
    await t.rejects(build({ env: { [name]: value } }), { message }, `${name}=${value}`)
  }
})
