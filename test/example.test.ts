// The example server's HTTP contract (../shared/DESIGN.md), row by row, through build().
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { MemoryRefreshTokenStore, MemoryRevocationStore } from '../lib/index.js'
import { TEST_SECRET, TestClock, bearer, build, login, refreshCookie, registerAndLogin, testSigner } from './helper.js'

const JSON_HEADERS = { 'content-type': 'application/json' }

t.test('POST /auth/register', async (t) => {
  const app = await build()
  t.teardown(() => app.close())

  const ok = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'Ada@Example.com', password: 'long enough' } })
  t.equal(ok.statusCode, 201)
  t.match(ok.json(), { id: String, email: 'ada@example.com' })
  t.same(Object.keys(ok.json()).sort(), ['email', 'id'], 'no password hash leaks')

  const taken = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'ada@example.com', password: 'another one' } })
  t.equal(taken.statusCode, 409)
  t.equal(taken.json().code, 'EMAIL_TAKEN')

  for (const [name, payload] of [
    ['missing password', { email: 'b@example.com' }],
    ['bad email', { email: 'not-an-email', password: 'long enough' }],
    ['short password', { email: 'b@example.com', password: 'short' }],
    ['wrong types', { email: 42, password: ['x'] }],
    ['unknown fields', { email: 'b@example.com', password: 'long enough', admin: true }]
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/auth/register', payload })
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().code, 'FST_ERR_VALIDATION', name)
  }
  const malformed = await app.inject({ method: 'POST', url: '/auth/register', headers: JSON_HEADERS, payload: '{"email":' })
  t.equal(malformed.statusCode, 400)
  t.match(malformed.json(), { statusCode: 400, code: String, error: 'Bad Request', message: String })
  const huge = await app.inject({ method: 'POST', url: '/auth/register', headers: JSON_HEADERS, payload: JSON.stringify({ email: 'c@example.com', password: 'x'.repeat(10_000) }) })
  t.equal(huge.statusCode, 413)
  const after = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'b@example.com', password: 'long enough' } })
  t.equal(after.statusCode, 401, 'none of the bad requests created an account')
})

t.test('POST /auth/login', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'grace@example.com', password: 'right password' } })

  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'GRACE@example.com', password: 'right password' } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'tokenType'])
  t.equal(body.tokenType, 'Bearer')
  t.equal(body.expiresIn, 900)
  t.equal(res.headers['cache-control'], 'no-store')
  const cookie = res.cookies.find(c => c.name === 'refresh_token')
  t.ok(cookie, 'refresh cookie set')
  t.equal(cookie?.httpOnly, true)
  t.equal(cookie?.sameSite, 'Strict')
  t.equal(cookie?.path, '/auth')
  t.equal(cookie?.secure, true)
  t.equal(cookie?.maxAge, 7 * 24 * 3600)
  const secretPart = (cookie?.value ?? '').split('.').at(-1) as string
  t.ok(Buffer.from(secretPart, 'base64url').length >= 32, 'at least 256 bits of randomness')

  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'grace@example.com', password: 'wrong password' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'INVALID_CREDENTIALS')
  t.equal(refreshCookie(wrong), undefined, 'no cookie on failure')
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: 'whatever' } })
  t.equal(unknown.statusCode, 401)
  t.equal(unknown.json().code, 'INVALID_CREDENTIALS')
  t.equal(unknown.json().message, wrong.json().message, 'unknown email and wrong password look alike')
})

t.test('POST /auth/login answers 429 after repeated failures, for that account and client only', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'v@example.com', password: 'right password' } })
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'w@example.com', password: 'right password' } })
  const attempt = (email: string, password: string, ip = '10.0.0.1') =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip })

  for (let i = 0; i < 5; i++) t.equal((await attempt('v@example.com', 'wrong')).statusCode, 401)
  const blocked = await attempt('v@example.com', 'wrong')
  t.equal(blocked.statusCode, 429)
  t.match(blocked.json(), { statusCode: 429, code: String, error: 'Too Many Requests' })
  t.equal((await attempt('v@example.com', 'right password')).statusCode, 429, 'even the right password waits')
  t.equal((await attempt('v@example.com', 'right password', '10.0.0.2')).statusCode, 200, 'another client is not locked out')
  t.equal((await attempt('w@example.com', 'right password')).statusCode, 200, 'another account from the same client is not locked out')
})

t.test('POST /auth/refresh rotates the refresh token', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const session = await registerAndLogin(app)

  const missing = await app.inject({ method: 'POST', url: '/auth/refresh' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().code, 'REFRESH_TOKEN_MISSING')

  const res = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })
  t.equal(res.statusCode, 200)
  t.same(Object.keys(res.json()).sort(), ['accessToken', 'expiresIn', 'tokenType'])
  const rotated = refreshCookie(res)
  t.ok(rotated)
  t.not(rotated, session.refreshToken, 'a new refresh token every time')
  const cookie = res.cookies.find(c => c.name === 'refresh_token')
  t.match(cookie, { httpOnly: true, sameSite: 'Strict', path: '/auth', secure: true })
  const me = await app.inject({ url: '/me', headers: bearer(res.json().accessToken) })
  t.equal(me.statusCode, 200)
  t.same(me.json(), { id: session.userId, email: session.email })

  for (const garbage of ['garbage', 'a.b', 'x'.repeat(5000), `${session.refreshToken}x`, session.refreshToken.replace(/.$/, c => c === 'A' ? 'B' : 'A')]) {
    const bad = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: garbage } })
    t.equal(bad.statusCode, 401)
    t.equal(bad.json().code, 'REFRESH_TOKEN_INVALID')
  }
  const next = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: rotated as string } })
  t.equal(next.statusCode, 200, 'garbage changed nothing: the newest token still works')
})

t.test('a rotated refresh token within the grace window succeeds with the same child; after it, it revokes the session', async (t) => {
  const clock = new TestClock()
  const app = await build({ now: clock.now })
  t.teardown(() => app.close())
  const session = await registerAndLogin(app)

  const first = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })
  clock.advance(5_000)
  const second = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })
  t.equal(second.statusCode, 200, 'two tabs refreshing at once both succeed')
  t.equal(refreshCookie(second), refreshCookie(first), 'the retry gets the same child: the chain never forks')

  const sessions = await app.inject({ url: '/auth/sessions', headers: bearer(second.json().accessToken) })
  t.equal(sessions.json().length, 1)

  clock.advance(10_000)
  const accessBefore = second.json().accessToken
  const reused = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })
  t.equal(reused.statusCode, 401)
  t.equal(reused.json().code, 'REFRESH_TOKEN_REUSED')
  const cleared = reused.cookies.find(c => c.name === 'refresh_token')
  t.equal(cleared?.value, '', 'the cookie is cleared')

  const newest = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookie(first) as string } })
  t.equal(newest.statusCode, 401, 'the newest refresh token of the session stops working')
  t.equal(newest.json().code, 'REFRESH_TOKEN_INVALID')
  const me = await app.inject({ url: '/me', headers: bearer(accessBefore) })
  t.equal(me.statusCode, 401, 'the access tokens of the session stop working')
  t.equal(me.json().code, 'TOKEN_REVOKED')
  const original = await app.inject({ url: '/me', headers: bearer(session.accessToken) })
  t.equal(original.json().code, 'TOKEN_REVOKED')
})

t.test('POST /auth/logout ends the current session only', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const laptop = await registerAndLogin(app, 'password one')
  const phone = await login(app, laptop.email, 'password one')

  const noAuth = await app.inject({ method: 'POST', url: '/auth/logout', cookies: { refresh_token: laptop.refreshToken } })
  t.equal(noAuth.statusCode, 401)
  t.equal(noAuth.json().code, 'TOKEN_MISSING')

  const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(laptop.accessToken), cookies: { refresh_token: laptop.refreshToken } })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  const cleared = res.cookies.find(c => c.name === 'refresh_token')
  t.equal(cleared?.value, '')
  t.equal(cleared?.path, '/auth')

  const me = await app.inject({ url: '/me', headers: bearer(laptop.accessToken) })
  t.equal(me.statusCode, 401)
  t.equal(me.json().code, 'TOKEN_REVOKED')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: laptop.refreshToken } })
  t.equal(refresh.json().code, 'REFRESH_TOKEN_INVALID')

  t.equal((await app.inject({ url: '/me', headers: bearer(phone.accessToken) })).statusCode, 200, 'the other device keeps working')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: phone.refreshToken } })).statusCode, 200)
})

t.test('POST /auth/logout-all ends every session of the user', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const laptop = await registerAndLogin(app, 'password one')
  const phone = await login(app, laptop.email, 'password one')
  const stranger = await registerAndLogin(app)

  const noAuth = await app.inject({ method: 'POST', url: '/auth/logout-all' })
  t.equal(noAuth.json().code, 'TOKEN_MISSING')

  const res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(phone.accessToken) })
  t.equal(res.statusCode, 204)
  t.equal(res.cookies.find(c => c.name === 'refresh_token')?.value, '')
  for (const s of [laptop, phone]) {
    const me = await app.inject({ url: '/me', headers: bearer(s.accessToken) })
    t.equal(me.json().code, 'TOKEN_REVOKED')
    const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: s.refreshToken } })
    t.equal(refresh.json().code, 'REFRESH_TOKEN_INVALID')
  }
  t.equal((await app.inject({ url: '/me', headers: bearer(stranger.accessToken) })).statusCode, 200, 'other users are untouched')
  const again = await login(app, laptop.email, 'password one')
  t.equal((await app.inject({ url: '/me', headers: bearer(again.accessToken) })).statusCode, 200, 'a new login works')
})

t.test('POST /auth/password changes the password and invalidates every older token', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const laptop = await registerAndLogin(app, 'old password')
  const phone = await login(app, laptop.email, 'old password')

  const wrong = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(laptop.accessToken), payload: { currentPassword: 'nope', newPassword: 'new password' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'INVALID_CREDENTIALS')
  t.equal((await app.inject({ url: '/me', headers: bearer(phone.accessToken) })).statusCode, 200, 'a wrong current password changes nothing')
  const invalid = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(laptop.accessToken), payload: { currentPassword: 'old password' } })
  t.equal(invalid.statusCode, 400)

  const res = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(laptop.accessToken), payload: { currentPassword: 'old password', newPassword: 'new password' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().tokenType, 'Bearer')
  const newRefresh = refreshCookie(res)
  t.ok(newRefresh)

  for (const s of [laptop, phone]) {
    t.equal((await app.inject({ url: '/me', headers: bearer(s.accessToken) })).json().code, 'TOKEN_REVOKED')
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: s.refreshToken } })).json().code, 'REFRESH_TOKEN_INVALID')
  }
  t.equal((await app.inject({ url: '/me', headers: bearer(res.json().accessToken) })).statusCode, 200, 'the returned access token works')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: newRefresh as string } })).statusCode, 200, 'the returned refresh token works')
  const oldLogin = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: laptop.email, password: 'old password' } })
  t.equal(oldLogin.json().code, 'INVALID_CREDENTIALS')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: laptop.email, password: 'new password' } })).statusCode, 200)
})

t.test('GET /auth/sessions and DELETE /auth/sessions/:id', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const laptop = await registerAndLogin(app, 'password one', { 'user-agent': 'Laptop Browser' })
  const phone = await login(app, laptop.email, 'password one', { 'user-agent': 'Phone Browser' })
  const stranger = await registerAndLogin(app)

  t.equal((await app.inject({ url: '/auth/sessions' })).json().code, 'TOKEN_MISSING')
  const list = await app.inject({ url: '/auth/sessions', headers: bearer(laptop.accessToken) })
  t.equal(list.statusCode, 200)
  const sessions = list.json() as Array<{ id: string, createdAt: string, lastUsedAt: string, userAgent: string, current: boolean }>
  t.equal(sessions.length, 2)
  for (const s of sessions) {
    t.same(Object.keys(s).sort(), ['createdAt', 'current', 'id', 'lastUsedAt', 'userAgent'])
    t.ok(!Number.isNaN(Date.parse(s.createdAt)) && !Number.isNaN(Date.parse(s.lastUsedAt)), 'ISO dates')
  }
  const current = sessions.find(s => s.current)
  const other = sessions.find(s => !s.current)
  t.equal(current?.userAgent, 'Laptop Browser')
  t.equal(other?.userAgent, 'Phone Browser')

  const foreign = await app.inject({ method: 'DELETE', url: `/auth/sessions/${other?.id}`, headers: bearer(stranger.accessToken) })
  t.equal(foreign.statusCode, 404, "another user's session is not found")
  t.equal(foreign.json().code, 'SESSION_NOT_FOUND')
  t.equal((await app.inject({ url: '/me', headers: bearer(phone.accessToken) })).statusCode, 200, 'and nothing changed')
  const tooLong = await app.inject({ method: 'DELETE', url: `/auth/sessions/${'x'.repeat(500)}`, headers: bearer(laptop.accessToken) })
  t.equal(tooLong.statusCode, 414, 'an oversized id is refused by the router')
  for (const id of ['unknown-session-id', 'x'.repeat(90), '%00%2F..']) {
    const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(laptop.accessToken) })
    t.equal(res.statusCode, 404)
    t.equal(res.json().code, 'SESSION_NOT_FOUND')
  }

  const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${other?.id}`, headers: bearer(laptop.accessToken) })
  t.equal(res.statusCode, 204)
  t.equal((await app.inject({ url: '/me', headers: bearer(phone.accessToken) })).json().code, 'TOKEN_REVOKED', "the device's access token stops at once")
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: phone.refreshToken } })).json().code, 'REFRESH_TOKEN_INVALID', 'and its refresh token')
  t.equal((await app.inject({ url: '/me', headers: bearer(laptop.accessToken) })).statusCode, 200, 'the current device keeps working')
  const after = await app.inject({ url: '/auth/sessions', headers: bearer(laptop.accessToken) })
  t.same(after.json().map((s: { id: string }) => s.id), [current?.id])
  const again = await app.inject({ method: 'DELETE', url: `/auth/sessions/${other?.id}`, headers: bearer(laptop.accessToken) })
  t.equal(again.json().code, 'SESSION_NOT_FOUND')
})

t.test('GET /me and the access-token failures', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const session = await registerAndLogin(app)
  const me = (headers: Record<string, string>) => app.inject({ url: '/me', headers })

  const ok = await me(bearer(session.accessToken))
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { id: session.userId, email: session.email })
  t.equal((await me({ authorization: `bearer   ${session.accessToken}` })).statusCode, 200, 'the scheme is case-insensitive')

  const expect = async (headers: Record<string, string>, code: string, name: string) => {
    const res = await me(headers)
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, code, name)
    t.match(res.json(), { statusCode: 401, error: 'Unauthorized', message: String }, name)
  }
  await expect({}, 'TOKEN_MISSING', 'no header')
  await expect({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, 'TOKEN_MISSING', 'another scheme')
  await expect({ authorization: 'Bearer ' }, 'TOKEN_INVALID', 'empty token')
  await expect({ authorization: 'Bearer garbage' }, 'TOKEN_INVALID', 'garbage')
  await expect({ authorization: `Bearer ${'a'.repeat(10_000)}` }, 'TOKEN_INVALID', 'oversized')
  const [h, p, s] = session.accessToken.split('.')
  await expect(bearer(`${h}.${p}.${s.slice(0, -2)}xx`), 'TOKEN_INVALID', 'bad signature')
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
  const tampered = Buffer.from(JSON.stringify({ ...payload, sub: 'someone-else' })).toString('base64url')
  await expect(bearer(`${h}.${tampered}.${s}`), 'TOKEN_INVALID', 'tampered payload')
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')
  await expect(bearer(`${none}.${p}.`), 'TOKEN_INVALID', 'alg none')

  const signWith = (options: Record<string, unknown>) => testSigner({ key: TEST_SECRET, ...options })
  const claims = { sub: session.userId, sid: payload.sid, jti: 'another-jti-value', ver: 0 }
  await expect(bearer(signWith({ algorithm: 'HS512', typ: 'at+jwt', expiresIn: 60_000 })(claims)), 'TOKEN_INVALID', 'another algorithm with the same secret')
  await expect(bearer(signWith({ algorithm: 'HS256', expiresIn: 60_000 })(claims)), 'TOKEN_INVALID', 'a plain JWT of the same app (typ JWT)')
  await expect(bearer(signWith({ algorithm: 'HS256', typ: 'at+jwt', expiresIn: 60_000 })({ sub: session.userId })), 'TOKEN_INVALID', 'missing claims')
  await expect(bearer(signWith({ algorithm: 'HS256', typ: 'at+jwt', expiresIn: 60_000 })({ ...claims, ver: 'zero' })), 'TOKEN_INVALID', 'wrong claim types')
  const expired = signWith({ algorithm: 'HS256', typ: 'at+jwt', expiresIn: 900_000, clockTimestamp: Date.now() - 901_000 })(claims)
  await expect(bearer(expired), 'TOKEN_EXPIRED', 'expired')
  const expiredForged = testSigner({ key: 'another-secret-that-is-long-enough-000', algorithm: 'HS256', typ: 'at+jwt', expiresIn: 900_000, clockTimestamp: Date.now() - 901_000 })(claims)
  await expect(bearer(expiredForged), 'TOKEN_INVALID', 'an expired token with a bad signature is invalid, not expired')

  const expiredRes = await me(bearer(expired))
  t.match(expiredRes.headers['www-authenticate'], /Bearer error="invalid_token"/)
})

t.test('cookie-authenticated routes refuse a cross-site Origin', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const session = await registerAndLogin(app)
  const cookies = { refresh_token: session.refreshToken }

  for (const origin of ['https://evil.example', 'null', 'http://localhost:80.evil.example']) {
    const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', cookies, headers: { origin } })
    t.equal(refresh.statusCode, 403, origin)
    t.equal(refresh.json().code, 'CROSS_SITE_REQUEST')
    const logout = await app.inject({ method: 'POST', url: '/auth/logout', cookies, headers: { origin, ...bearer(session.accessToken) } })
    t.equal(logout.statusCode, 403, origin)
  }
  const fetchMeta = await app.inject({ method: 'POST', url: '/auth/refresh', cookies, headers: { 'sec-fetch-site': 'cross-site' } })
  t.equal(fetchMeta.statusCode, 403)
  t.equal((await app.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode, 200, 'the refused logout changed nothing')

  const own = await app.inject({ method: 'POST', url: '/auth/refresh', cookies, headers: { origin: 'http://localhost:80', host: 'localhost:80' } })
  t.equal(own.statusCode, 200, 'the service\'s own origin is accepted')
})

t.test('a store outage answers 503 AUTH_STORE_UNAVAILABLE and lets nothing through', async (t) => {
  const revocation = new MemoryRevocationStore()
  const refresh = new MemoryRefreshTokenStore()
  let down = false
  let hang = false
  const outage = <T extends object>(store: T): T => new Proxy(store, {
    get (target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (typeof value !== 'function' || key === 'close' || key === 'init') return value
      return (...args: unknown[]) => {
        if (hang) return new Promise(() => {})
        if (down) return Promise.reject(new Error('ECONNREFUSED'))
        return value.apply(target, args)
      }
    }
  })
  const app = await build({ revocationStore: outage(revocation), refreshTokenStore: outage(refresh) })
  t.teardown(() => app.close())
  const session = await registerAndLogin(app)
  down = true
  for (const [name, request] of [
    ['me', { url: '/me', headers: bearer(session.accessToken) }],
    ['refresh', { method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } }],
    ['login', { method: 'POST', url: '/auth/login', payload: { email: session.email, password: 'correct horse battery' } }],
    ['logout', { method: 'POST', url: '/auth/logout', headers: bearer(session.accessToken) }],
    ['sessions', { url: '/auth/sessions', headers: bearer(session.accessToken) }]
  ] as const) {
    const res = await app.inject(request as InjectOptions)
    t.equal(res.statusCode, 503, name)
    t.same(res.json(), { statusCode: 503, code: 'AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Authentication store unavailable' }, `${name}: no stack, no detail`)
  }
  down = false
  hang = true
  const started = Date.now()
  const hung = await app.inject({ url: '/me', headers: bearer(session.accessToken) })
  t.equal(hung.statusCode, 503, 'a hanging store times out')
  t.ok(Date.now() - started < 10_000, 'within bounded time')
  hang = false
  t.equal((await app.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode, 200, 'recovers once the store is back')
})

t.test('concurrent wrong passwords cannot slip past the login limit', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'c@example.com', password: 'right password' } })
  const results = await Promise.all(Array.from({ length: 20 }, () =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'c@example.com', password: 'wrong' } })))
  const codes = results.map(r => r.statusCode)
  t.equal(codes.filter(c => c === 401).length, 5, 'exactly five guesses were checked')
  t.equal(codes.filter(c => c === 429).length, 15)
  const limited = results.find(r => r.statusCode === 429)
  t.ok(Number(limited?.headers['retry-after']) > 0 && Number(limited?.headers['retry-after']) <= 900, 'retry-after is what is left of the window')
})

t.test('POST /auth/password limits guesses of the current password', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const session = await registerAndLogin(app, 'old password')
  const attempt = (currentPassword: string) => app.inject({ method: 'POST', url: '/auth/password', headers: bearer(session.accessToken), payload: { currentPassword, newPassword: 'new password' } })
  for (let i = 0; i < 5; i++) t.equal((await attempt('guess')).json().code, 'INVALID_CREDENTIALS')
  const limited = await attempt('old password')
  t.equal(limited.statusCode, 429)
  t.equal((await app.inject({ url: '/me', headers: bearer(session.accessToken) })).statusCode, 200, 'nothing changed')
})

t.test('behind a TLS proxy the public origin may refresh when trusted or allowed', async (t) => {
  const proxied = await build({ env: { TRUST_PROXY: '1' } })
  t.teardown(() => proxied.close())
  const a = await registerAndLogin(proxied)
  const viaProxy = await proxied.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: a.refreshToken }, headers: { origin: 'https://app.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com' } })
  t.equal(viaProxy.statusCode, 200, 'the forwarded origin is the service\'s own')

  const allowed = await build({ env: { ALLOWED_ORIGINS: 'https://app.example.com, https://admin.example.com' } })
  t.teardown(() => allowed.close())
  const b = await registerAndLogin(allowed)
  const res = await allowed.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: b.refreshToken }, headers: { origin: 'https://admin.example.com' } })
  t.equal(res.statusCode, 200)
  const evil = await allowed.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookie(res) as string }, headers: { origin: 'https://evil.example.com', 'x-forwarded-host': 'evil.example.com' } })
  t.equal(evil.json().code, 'CROSS_SITE_REQUEST', 'forwarded headers are ignored unless the proxy is trusted')
})

t.test('a failing revocation while revoking a session can be retried to completion', async (t) => {
  const revocation = new MemoryRevocationStore()
  let failSessionRevocation = false
  const original = revocation.revokeSession.bind(revocation)
  revocation.revokeSession = async (...args) => {
    if (failSessionRevocation) throw new Error('connection reset')
    return original(...args)
  }
  const app = await build({ revocationStore: revocation })
  t.teardown(() => app.close())
  const laptop = await registerAndLogin(app, 'password one')
  const phone = await login(app, laptop.email, 'password one')
  const phoneSession = (await app.inject({ url: '/auth/sessions', headers: bearer(laptop.accessToken) })).json().find((s: { current: boolean }) => !s.current)
  failSessionRevocation = true
  const failed = await app.inject({ method: 'DELETE', url: `/auth/sessions/${phoneSession.id}`, headers: bearer(laptop.accessToken) })
  t.equal(failed.statusCode, 503)
  failSessionRevocation = false
  const retry = await app.inject({ method: 'DELETE', url: `/auth/sessions/${phoneSession.id}`, headers: bearer(laptop.accessToken) })
  t.equal(retry.statusCode, 204, 'the retry finds the session and completes')
  t.equal((await app.inject({ url: '/me', headers: bearer(phone.accessToken) })).json().code, 'TOKEN_REVOKED')
})

t.test('a failing version read during refresh leaves the token unrotated', async (t) => {
  const clock = new TestClock()
  const revocation = new MemoryRevocationStore()
  let down = false
  const original = revocation.getTokenVersion.bind(revocation)
  revocation.getTokenVersion = async (userId) => {
    if (down) throw new Error('timeout')
    return original(userId)
  }
  const app = await build({ revocationStore: revocation, now: clock.now })
  t.teardown(() => app.close())
  const session = await registerAndLogin(app)
  down = true
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })).statusCode, 503)
  down = false
  clock.advance(60_000)
  const retry = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })
  t.equal(retry.statusCode, 200, 'the retry after the grace window is not taken for reuse')
})
