// The cookie transport at the plugin level, on a bare Fastify per test: its options,
// the hook's three answers to a missing session, the codes, the cost, planted cookies.
import t from 'tap'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import revocableJwt, { MemoryRevocationStore, revocableJwtCookieSession, type CookieSessionOptions, type RevocableJwtOptions } from '../lib/index.js'
import { TEST_SECRET, TestClock, bearer, testSigner } from './helper.js'

const ACCESS = 'page_access_token'
const REFRESH = 'page_refresh_token'

async function appWith (options: CookieSessionOptions = {}, base: Partial<RevocableJwtOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, ...base } as RevocableJwtOptions)
  await app.register(revocableJwtCookieSession, options)
  const { cookieSession, startCookieSession, endCookieSession } = app.revocableJwt
  app.post<{ Querystring: { user?: string } }>('/login', async (request, reply) => {
    const started = await startCookieSession(reply, { id: request.query.user ?? 'alice' })
    return started
  })
  app.get('/api', { onRequest: cookieSession() }, async (request) => request.auth)
  app.get('/page', { onRequest: cookieSession({ onMissing: 'redirect', loginPath: '/sign-in?from=page' }) }, async () => 'page')
  app.get('/open', { onRequest: cookieSession({ onMissing: 'continue' }) }, async (request) => ({ auth: request.auth }))
  app.put('/api', { onRequest: cookieSession() }, async () => 'changed')
  app.post('/logout', { onRequest: cookieSession({ onMissing: 'continue' }) }, async (request, reply) => ({ ended: await endCookieSession(request, reply) }))
  app.get('/me', { onRequest: app.revocableJwt.authenticate }, async (request) => request.auth)
  await app.ready()
  return app
}

function cookiesOf (res: LightMyRequestResponse): Record<string, string> {
  return Object.fromEntries(res.cookies.map(c => [c.name, c.value]))
}

async function login (app: FastifyInstance, user = 'alice'): Promise<Record<string, string>> {
  return cookiesOf(await app.inject({ method: 'POST', url: `/login?user=${user}` }))
}

function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
}

function expired (token: string): string {
  const past = Math.floor(Date.now() / 1000) - 60
  return testSigner({ key: TEST_SECRET, typ: 'at+jwt' })({ ...claimsOf(token), jti: 'old', iat: past - 900, exp: past })
}

t.test('bad options stop the boot with a message naming the option', async (t) => {
  for (const [options, message] of [
    [{ pth: '/app' }, /^revocableJwtCookieSession: unknown option "pth" \(did you mean "path"\?\)/],
    [{ path: 'app' }, 'path must be a path on this service like "/login", got "app"'],
    [{ path: '/app?x' }, 'path must be a path like "/app", got "/app?x"'],
    [{ loginPath: '//evil.example/login' }, 'loginPath must be a path on this service like "/login", got "//evil.example/login"'],
    [{ loginPath: 'https://evil.example/' }, 'loginPath must be a path on this service like "/login", got "https://evil.example/"'],
    [{ allowedOrigins: ['evil.example'] }, 'allowedOrigins must be an array of origins like "https://app.example.com"'],
    [{ accessCookie: { name: 'a b' } }, 'accessCookie.name must be a valid cookie name, got "a b"'],
    [{ accessCookie: { nmae: 'x' } }, /^revocableJwtCookieSession: accessCookie: unknown option "nmae" \(did you mean "name"\?\)/],
    [{ refreshCookie: { path: 'app' } }, 'refreshCookie.path must be a path like "/app", got "app"'],
    [{ refreshCookie: { sameSite: 'none' } }, 'refreshCookie.sameSite must be "lax" or "strict", got "none"'],
    [{ accessCookie: { secure: 'yes' } }, 'accessCookie.secure must be a boolean'],
    [{ accessCookie: { domain: '' } }, 'accessCookie.domain must be a non-empty string'],
    [{ accessCookie: { name: '__Secure-at', secure: false } }, 'accessCookie.name starts with __Secure-, which browsers accept only with accessCookie.secure: true'],
    [{ path: '/app', accessCookie: { name: '__Host-at' } }, 'accessCookie.name starts with __Host-, which browsers accept only with accessCookie.secure: true, accessCookie.path "/" and no accessCookie.domain'],
    [{ accessCookie: { name: 'same' }, refreshCookie: { name: 'same' } }, 'accessCookie.name and refreshCookie.name must differ'],
    [{ refreshCookie: { name: 'refresh_token' } }, 'refreshCookie.name must differ from the refresh routes\' cookie ("refresh_token"): each session keeps its own']
  ] as Array<[Record<string, unknown>, string | RegExp]>) {
    const app = Fastify()
    await app.register(revocableJwt, { secret: TEST_SECRET })
    app.register(revocableJwtCookieSession, options as CookieSessionOptions)
    await t.rejects(async () => await app.ready(), { message }, JSON.stringify(options))
    await app.close()
  }
  const alone = Fastify()
  alone.register(revocableJwtCookieSession)
  await t.rejects(async () => await alone.ready(), /fastify-revocable-jwt-authenticate/, 'registered without the package\'s plugins: says which it needs')
  const without = Fastify()
  await without.register(revocableJwt, { secret: TEST_SECRET })
  await without.ready()
  t.throws(() => without.revocableJwt.cookieSession(), { message: 'fastify.revocableJwt.cookieSession needs the revocableJwtCookieSession plugin: register it (the default export registers them all)' })
  await without.close()
})

t.test('bad hook options throw when the route is defined', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const { cookieSession } = app.revocableJwt
  t.throws(() => cookieSession({ onMissing: 'login' as 'error' }), { message: 'cookieSession: onMissing must be "redirect", "error" or "continue", got "login"' })
  t.throws(() => cookieSession({ onMissing: 'redirect' }), { message: 'cookieSession: onMissing "redirect" needs a loginPath (of the hook, or of revocableJwtCookieSession)' })
  t.throws(() => cookieSession({ onMissing: 'redirect', loginPath: '//evil.example' }), { message: 'cookieSession: loginPath must be a path on this service like "/login", got "//evil.example"' })
  t.throws(() => cookieSession({ onmissing: 'error' } as object), /^cookieSession: unknown option "onmissing" \(did you mean "onMissing"\?\)/)
})

t.test('onMissing "error" answers the codes of authenticate, and of the refresh route when the silent refresh is refused', async (t) => {
  const clock = new TestClock()
  const app = await appWith({}, { now: clock.now })
  t.teardown(() => app.close())
  const cookies = await login(app)
  const code = async (sent: Record<string, string>): Promise<string> => {
    const res = await app.inject({ url: '/api', cookies: sent })
    t.equal(res.statusCode, 401)
    return res.json().code
  }
  t.equal(await code({}), 'TOKEN_MISSING')
  t.equal(await code({ [ACCESS]: 'x'.repeat(9000) }), 'TOKEN_INVALID', 'an oversized cookie is refused unparsed')
  t.equal(await code({ [ACCESS]: `${cookies[ACCESS]}x` }), 'TOKEN_INVALID')
  t.equal(await code({ [ACCESS]: expired(cookies[ACCESS]) }), 'TOKEN_EXPIRED', 'expired with no refresh cookie')
  t.equal(await code({ [ACCESS]: expired(cookies[ACCESS]), [REFRESH]: 'garbage' }), 'REFRESH_TOKEN_INVALID')
  const rotated = await app.inject({ url: '/api', cookies: { [REFRESH]: cookies[REFRESH] } })
  t.equal(rotated.statusCode, 200)
  clock.advance(60_000)
  const reused = await app.inject({ url: '/api', cookies: { [REFRESH]: cookies[REFRESH] } })
  t.equal(reused.json().code, 'REFRESH_TOKEN_REUSED')
  t.match(reused.cookies.find(c => c.name === REFRESH), { value: '' }, 'a refused refresh cookie is cleared')
  const revoked = await app.inject({ url: '/api', cookies: cookiesOf(rotated) })
  t.equal(revoked.json().code, 'TOKEN_REVOKED', 'the reuse revoked the session')
  t.same(revoked.cookies.map(c => [c.name, c.value]), [[ACCESS, ''], [REFRESH, '']], 'a revoked session clears both cookies')
  t.equal(revoked.headers['www-authenticate'], undefined, 'no Bearer challenge: this is not the Bearer transport')
})

t.test('request.auth is what authenticate sets for the same token, at the same cost: one store call', async (t) => {
  const store = new MemoryRevocationStore()
  let checks = 0
  const check = store.check.bind(store)
  store.check = async (...args) => { checks++; return await check(...args) }
  const app = await appWith({}, { revocationStore: store })
  t.teardown(() => app.close())
  const cookies = await login(app)
  checks = 0
  const viaCookie = await app.inject({ url: '/api', cookies })
  t.equal(checks, 1, 'one store call for a cookie')
  const viaBearer = await app.inject({ url: '/me', headers: bearer(cookies[ACCESS]) })
  t.equal(checks, 2, 'as for a Bearer token')
  t.same(viaCookie.json(), viaBearer.json())
  t.match(viaCookie.json(), { userId: 'alice', sessionId: String, tokenId: String, version: 0, expiresAt: Number, claims: { sub: 'alice' } })
})

t.test('onMissing "redirect" answers 303 to the login path; "continue" serves the route without a session', async (t) => {
  const app = await appWith({ loginPath: '/login-page' })
  t.teardown(() => app.close())
  const page = await app.inject({ url: '/page' })
  t.equal(page.statusCode, 303)
  t.equal(page.headers.location, '/sign-in?from=page', 'the hook\'s own loginPath wins over the plugin\'s')
  t.equal(page.headers['cache-control'], 'no-store')
  t.same((await app.inject({ url: '/open' })).json(), { auth: null })
  t.equal((await app.inject({ url: '/page', cookies: await login(app) })).body, 'page')
  const defaulted = app.revocableJwt.cookieSession({ onMissing: 'redirect' })
  t.type(defaulted, 'function', 'the plugin\'s loginPath serves a hook that names none')
})

t.test('a store that fails answers 503, never a redirect to the login page', async (t) => {
  const store = new MemoryRevocationStore()
  const app = await appWith({ loginPath: '/login-page' }, { revocationStore: store })
  t.teardown(() => app.close())
  const cookies = await login(app)
  store.check = async () => { throw new Error('connection lost') }
  const res = await app.inject({ url: '/page', cookies })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  t.same(res.cookies, [], 'and the cookies are kept')
})

t.test('unsafe methods are refused cross-site before any cookie is read; safe ones never are', async (t) => {
  const app = await appWith({ allowedOrigins: ['https://partner.example'] })
  t.teardown(() => app.close())
  const cookies = await login(app)
  const put = await app.inject({ method: 'PUT', url: '/api', cookies, headers: { origin: 'https://evil.example' } })
  t.equal(put.statusCode, 403)
  t.equal(put.json().code, 'CROSS_SITE_REQUEST')
  t.equal((await app.inject({ method: 'PUT', url: '/api', headers: { 'sec-fetch-site': 'cross-site' } })).json().code, 'CROSS_SITE_REQUEST', 'even without cookies')
  t.equal((await app.inject({ method: 'PUT', url: '/api', cookies, headers: { origin: 'https://partner.example' } })).statusCode, 200, 'an allowed origin')
  t.equal((await app.inject({ method: 'PUT', url: '/api', cookies })).statusCode, 200, 'no Origin: not a browser\'s cross-site request')
  t.equal((await app.inject({ url: '/api', cookies, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })).statusCode, 200, 'GET')
  t.equal((await app.inject({ method: 'HEAD', url: '/api', cookies, headers: { 'sec-fetch-site': 'cross-site' } })).statusCode, 200, 'HEAD')
  const guard = app.revocableJwt.refuseCrossSite
  const reply = {} as Parameters<typeof guard>[1]
  await t.rejects(guard({ method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } } as Parameters<typeof guard>[0], reply), { code: 'CROSS_SITE_REQUEST' }, 'refuseCrossSite alone, for forms without a session')
})

t.test('cookies planted beside the app\'s own are never chosen', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const alice = await login(app, 'alice')
  const mallory = await login(app, 'mallory')
  // Two values under one name: the browser sent one per (domain, path); one may have been planted.
  const twoAccess = `${ACCESS}=${mallory[ACCESS]}; ${ACCESS}=${alice[ACCESS]}; ${REFRESH}=${alice[REFRESH]}`
  const res = await app.inject({ url: '/api', headers: { cookie: twoAccess, host: 'app.example.com' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().userId, 'alice', 'neither access cookie was taken: the session came from the one refresh cookie')
  const twoRefresh = `${REFRESH}=${mallory[REFRESH]}; ${REFRESH}=${alice[REFRESH]}`
  const refused = await app.inject({ url: '/api', headers: { cookie: twoRefresh, host: 'app.example.com' } })
  t.equal(refused.json().code, 'REFRESH_TOKEN_INVALID', 'two well-formed refresh cookies: neither is chosen')
  t.ok(refused.cookies.some(c => c.name === REFRESH && c.domain === 'example.com' && c.value === ''), 'the copies a parent domain could hold are expired')
  t.notOk(refused.cookies.some(c => c.name === REFRESH && c.domain === undefined && c.value === ''), 'the app\'s own refresh cookie is not cleared: a planted copy must not log the user out')
  const onePlanted = `${REFRESH}=garbage; ${REFRESH}=${alice[REFRESH]}`
  t.equal((await app.inject({ url: '/api', headers: { cookie: onePlanted } })).json().userId, 'alice', 'one well-formed among them is used')
})

t.test('defaults: cookies on "/", SameSite=Lax, Secure as the refresh routes\' cookie; logging out', async (t) => {
  const app = await appWith({ accessCookie: { name: 'at', sameSite: 'strict' }, refreshCookie: { path: '/pages', domain: 'example.com' } }, { cookie: { secure: false } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/login' })
  t.match(res.cookies.find(c => c.name === 'at'), { path: '/', sameSite: 'Strict', httpOnly: true, secure: undefined, maxAge: 900 })
  t.match(res.cookies.find(c => c.name === REFRESH), { path: '/pages', sameSite: 'Lax', httpOnly: true, secure: undefined, domain: 'example.com' })
  t.match(res.json(), { userId: 'alice', sessionId: String })
  t.equal(res.headers['cache-control'], 'no-store')
  const cookies = cookiesOf(res)
  const out = await app.inject({ method: 'POST', url: '/logout', cookies })
  t.same(out.json(), { ended: true })
  t.match(out.cookies.find(c => c.name === REFRESH), { value: '', path: '/pages', domain: 'example.com' }, 'cleared with the attributes it was set with')
  t.equal((await app.inject({ url: '/api', cookies })).json().code, 'TOKEN_REVOKED')
  t.same((await app.inject({ method: 'POST', url: '/logout' })).json(), { ended: false }, 'no session: nothing to end')
})
