import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import revocableJwt, { type RevocableJwtOptions } from '../lib/index.js'
import { hashToken } from '../lib/domain/refresh-tokens.js'
import { TEST_SECRET, bearer } from './helper.js'

async function appWith (options: Partial<RevocableJwtOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, ...options } as RevocableJwtOptions)
  app.post<{ Querystring: { user: string } }>('/auth/login', async (request, reply) => reply.issueTokens({ id: request.query.user ?? 'alice' }))
  app.post('/auth/forget', async (_request, reply) => reply.clearRefreshCookie().code(204).send())
  app.get('/me', { onRequest: [app.revocableJwt.authenticate] }, async (request) => request.auth)
  await app.ready()
  return app
}

async function loginAs (app: FastifyInstance, user = 'alice', cookieName = 'refresh_token') {
  const res = await app.inject({ method: 'POST', url: `/auth/login?user=${user}`, headers: { 'user-agent': `${user}-agent` } })
  return { accessToken: res.json().accessToken as string, refreshToken: res.cookies.find(c => c.name === cookieName)?.value as string }
}

t.test('a configured allowed origin may refresh; others are refused', async (t) => {
  const app = await appWith({ allowedOrigins: ['https://app.example.com'] })
  t.teardown(() => app.close())
  const { refreshToken } = await loginAs(app)
  const foreign = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken }, headers: { origin: 'https://other.example.com' } })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().code, 'CROSS_SITE_REQUEST')
  const allowed = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken }, headers: { origin: 'https://APP.example.com' } })
  t.equal(allowed.statusCode, 200, 'origins compare case-insensitively')
})

t.test('a custom cookie name and insecure cookies for plain-http development', async (t) => {
  const app = await appWith({ cookie: { name: 'rt', secure: false, domain: 'example.com' } })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/auth/login' })
  const cookie = login.cookies.find(c => c.name === 'rt')
  t.match(cookie, { httpOnly: true, sameSite: 'Strict', path: '/auth', domain: 'example.com' })
  t.notOk(cookie?.secure, 'no Secure attribute')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { rt: cookie?.value as string } })
  t.equal(refresh.statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: cookie?.value as string } })).json().code, 'REFRESH_TOKEN_MISSING', 'the default name is not read')
  const forget = await app.inject({ method: 'POST', url: '/auth/forget' })
  t.match(forget.cookies.find(c => c.name === 'rt'), { value: '', path: '/auth', domain: 'example.com' }, 'clearRefreshCookie clears with the same attributes')
})

t.test('a refresh token older than the user\'s version is refused and its session revoked', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const { accessToken, refreshToken } = await loginAs(app)
  const revoked: unknown[] = []
  app.revocableJwt.events.on('sessionRevoked', (e) => revoked.push(e))
  await app.revocableJwt.bumpTokenVersion('alice')
  const res = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken } })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'REFRESH_TOKEN_INVALID')
  t.match(revoked, [{ userId: 'alice', reason: 'stale-version' }])
  t.same(await app.revocableJwt.listSessions('alice'), [], 'the stale session is gone')
  t.equal((await app.inject({ url: '/me', headers: bearer(accessToken) })).json().code, 'TOKEN_REVOKED')
})

t.test('the namespace revokes sessions and lists them for apps with their own routes', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const a = await loginAs(app)
  const b = await loginAs(app)
  const sessions = await app.revocableJwt.listSessions('alice')
  t.equal(sessions.length, 2)
  t.match(sessions[0], { userId: 'alice', userAgent: 'alice-agent', ip: '127.0.0.1', createdAt: Number, lastUsedAt: Number, expiresAt: Number })
  const sidA = (await app.inject({ url: '/me', headers: bearer(a.accessToken) })).json().sessionId
  t.equal(await app.revocableJwt.revokeSession('alice', sidA), true)
  t.equal(await app.revocableJwt.revokeSession('bob', sidA), false, 'unknown for another user')
  t.equal((await app.inject({ url: '/me', headers: bearer(a.accessToken) })).json().code, 'TOKEN_REVOKED')
  t.equal((await app.inject({ url: '/me', headers: bearer(b.accessToken) })).statusCode, 200)
  t.equal(await app.revocableJwt.logoutAll('alice'), 1)
  t.equal((await app.inject({ url: '/me', headers: bearer(b.accessToken) })).json().code, 'TOKEN_REVOKED')
  await t.rejects(app.revocableJwt.listSessions(''), { message: 'user id must be a non-empty, well-formed string of at most 128 bytes' })
  await t.rejects(app.revocableJwt.revokeSession('alice', ''), { message: 'sessionId must be a non-empty string' })
})

t.test('only the hash of a refresh token is stored', async (t) => {
  const stored: string[] = []
  const app = await appWith()
  t.teardown(() => app.close())
  const store = app.revocableJwt.refreshTokenStore
  const create = store.create.bind(store)
  store.create = async (input) => { stored.push(JSON.stringify(input)); return await create(input) }
  const { refreshToken } = await loginAs(app)
  t.equal(stored.length, 1)
  t.notOk(stored[0].includes(refreshToken.split('.')[2]), 'the secret part never reaches the store')
  t.ok(stored[0].includes(hashToken(refreshToken)), 'its SHA-256 does')
})

t.test('refresh keeps the session: same sid, new jti, lastUsedAt moves', async (t) => {
  let now = Date.now()
  const app = await appWith({ now: () => now })
  t.teardown(() => app.close())
  const { accessToken, refreshToken } = await loginAs(app)
  const before = (await app.inject({ url: '/me', headers: bearer(accessToken) })).json()
  now += 60_000
  const res = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken } })
  t.equal(res.headers['cache-control'], 'no-store')
  const after = (await app.inject({ url: '/me', headers: bearer(res.json().accessToken) })).json()
  t.equal(after.sessionId, before.sessionId)
  t.not(after.tokenId, before.tokenId)
  const [session] = await app.revocableJwt.listSessions('alice')
  t.equal(session.lastUsedAt, now)
  t.equal(session.createdAt, now - 60_000)
  now += 8 * 24 * 3600_000
  const expired = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: res.cookies.find(c => c.name === 'refresh_token')?.value as string } })
  t.equal(expired.json().code, 'REFRESH_TOKEN_INVALID', 'an expired refresh token is refused')
})

t.test('a failing accessTokenClaims during refresh leaves the token unrotated', async (t) => {
  let now = Date.now()
  let fail = false
  const app = await appWith({ now: () => now, accessTokenClaims: async () => { if (fail) throw new Error('user service down'); return { role: 'reader' } } })
  t.teardown(() => app.close())
  const { refreshToken } = await loginAs(app)
  fail = true
  const failed = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken } })
  t.same(failed.json(), { statusCode: 503, code: 'AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Authentication store unavailable' }, 'a 503 that says nothing of the hook\'s error')
  fail = false
  now += 60_000
  const retry = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken } })
  t.equal(retry.statusCode, 200, 'the retry after the grace window is not taken for reuse')
})

t.test('behind a gateway that strips a prefix, cookie.path names the public path while the routes stay where they are', async (t) => {
  const app = await appWith({ cookie: { path: '/api/auth' } })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/auth/login' })
  const cookie = login.cookies.find(c => c.name === 'refresh_token')
  t.equal(cookie?.path, '/api/auth', 'the browser sends it to the gateway\'s path')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: cookie?.value as string } })
  t.equal(refresh.statusCode, 200, 'the app still serves /auth/refresh')
  t.equal(refresh.cookies.find(c => c.name === 'refresh_token')?.path, '/api/auth')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(refresh.json().accessToken) })
  t.match(logout.cookies.find(c => c.name === 'refresh_token'), { value: '', path: '/api/auth' }, 'cleared on the same path')
})

t.test('the routes read no body: an empty or ignored body of any type is accepted', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  for (const [type, body] of [['application/x-www-form-urlencoded', ''], ['application/json', ''], ['text/plain', 'ignored'], ['application/json', '{"x":1}'], [undefined, undefined]] as const) {
    const { refreshToken } = await loginAs(app)
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken }, headers: type === undefined ? {} : { 'content-type': type }, body })
    t.equal(res.statusCode, 200, `${String(type)} ${JSON.stringify(body)}`)
  }
  const { refreshToken } = await loginAs(app)
  const big = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken }, headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(5000) })
  t.equal(big.statusCode, 413, 'a body is still bounded')
  const crossSite = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken }, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, body: '' })
  t.same([crossSite.statusCode, crossSite.json().code], [403, 'CROSS_SITE_REQUEST'], 'and the cross-site check still runs first')
})
