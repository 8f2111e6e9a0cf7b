import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import revocableJwt, {
  revocableJwtAuthenticate,
  revocableJwtIssuance,
  revocableJwtRevocation,
  revocableJwtTokenVersions,
  type RevocableJwtOptions
} from '../lib/index.js'
import { TEST_SECRET, bearer, testSigner } from './helper.js'

/** An app with the umbrella plugin, a login route that issues tokens for `?user=`, and a protected route. */
async function appWith (options: Partial<RevocableJwtOptions> = {}, before?: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const app = Fastify()
  if (before !== undefined) await before(app)
  await app.register(revocableJwt, { secret: TEST_SECRET, accessTokenClaims: () => ({ role: 'reader' }), ...options } as RevocableJwtOptions)
  app.post<{ Querystring: { user: string } }>('/login', async (request, reply) => reply.issueTokens({ id: request.query.user }))
  app.get('/protected', { onRequest: [app.revocableJwt.authenticate] }, async (request) => request.auth)
  await app.ready()
  return app
}

async function loginAs (app: FastifyInstance, user = 'alice'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: `/login?user=${user}` })
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json().accessToken
}

t.test('an access token carries sub, sid, jti, ver, iat, exp, extra claims and the typ header', async (t) => {
  const app = await appWith({ issuer: 'https://auth.example', audience: 'api' })
  t.teardown(() => app.close())
  const token = await loginAs(app)
  const [header, payload] = token.split('.').slice(0, 2).map(part => JSON.parse(Buffer.from(part, 'base64url').toString()))
  t.same(header, { alg: 'HS256', typ: 'at+jwt' })
  t.match(payload, { sub: 'alice', sid: String, jti: String, ver: 0, iat: Number, exp: Number, iss: 'https://auth.example', aud: 'api', role: 'reader' })
  t.equal(payload.exp - payload.iat, 900)
  t.ok(Buffer.from(payload.jti, 'base64url').length >= 16, 'jti has at least 128 random bits')
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { userId: 'alice', sessionId: payload.sid, tokenId: payload.jti, version: 0, expiresAt: payload.exp * 1000, claims: { role: 'reader' } })
})

t.test('issuer and audience are required when configured', async (t) => {
  const app = await appWith({ issuer: 'https://auth.example', audience: 'api' })
  t.teardown(() => app.close())
  const token = await loginAs(app)
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
  const sign = (claims: Record<string, unknown>) => testSigner({ key: TEST_SECRET, typ: 'at+jwt', expiresIn: 60_000 })({ sub: 'alice', sid: payload.sid, jti: 'j1', ver: 0, ...claims })
  for (const [name, claims] of [
    ['wrong issuer', { iss: 'https://evil.example', aud: 'api' }],
    ['wrong audience', { iss: 'https://auth.example', aud: 'other' }],
    ['no issuer', { aud: 'api' }],
    ['no audience', { iss: 'https://auth.example' }]
  ] as const) {
    const res = await app.inject({ url: '/protected', headers: bearer(sign(claims)) })
    t.equal(res.json().code, 'TOKEN_INVALID', name)
  }
  const good = await app.inject({ url: '/protected', headers: bearer(sign({ iss: 'https://auth.example', aud: 'api' })) })
  t.equal(good.statusCode, 200, 'a correctly signed token with the right iss/aud passes')
})

for (const [algorithm, type, keyOptions] of [
  ['RS256', 'rsa', { modulusLength: 2048 }],
  ['ES256', 'ec', { namedCurve: 'P-256' }],
  ['EdDSA', 'ed25519', {}]
] as const) {
  t.test(`${algorithm} key pairs sign and verify; a token of another key is refused`, async (t) => {
    const pem = () => generateKeyPairSync(type as 'rsa', { ...keyOptions, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as never) as unknown as { publicKey: string, privateKey: string }
    const pair = pem()
    const other = pem()
    const app = await appWith({ algorithm, secret: { private: pair.privateKey, public: pair.publicKey }, refreshTokenSecret: TEST_SECRET })
    t.teardown(() => app.close())
    const token = await loginAs(app)
    t.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).alg, algorithm)
    t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
    const forged = testSigner({ key: other.privateKey, algorithm, typ: 'at+jwt', expiresIn: 60_000 })({ ...payload, iat: undefined, exp: undefined })
    t.equal((await app.inject({ url: '/protected', headers: bearer(forged) })).json().code, 'TOKEN_INVALID')
    const hmacWithPublicKey = testSigner({ key: pair.publicKey, algorithm: 'HS256', typ: 'at+jwt', expiresIn: 60_000 })({ ...payload, iat: undefined, exp: undefined })
    t.equal((await app.inject({ url: '/protected', headers: bearer(hmacWithPublicKey) })).json().code, 'TOKEN_INVALID', 'no algorithm confusion')
  })
}

t.test('keys selected by kid allow rotation: old tokens verify, new ones are signed with the first key', async (t) => {
  const oldKey = { kid: 'k1', secret: 'old-secret-that-is-at-least-32-bytes!!' }
  const newKey = { kid: 'k2', secret: 'new-secret-that-is-at-least-32-bytes!!' }
  const before = await appWith({ secret: undefined, keys: [oldKey], refreshTokenSecret: TEST_SECRET })
  const oldToken = await loginAs(before)
  await before.close()

  const app = await appWith({ secret: undefined, keys: [newKey, oldKey], refreshTokenSecret: TEST_SECRET })
  t.teardown(() => app.close())
  // The old app's revocation store is gone, so versions start again at 0: the token is judged on its signature and kid.
  t.equal((await app.inject({ url: '/protected', headers: bearer(oldToken) })).statusCode, 200, 'a token of the previous key still verifies')
  const newToken = await loginAs(app)
  t.equal(JSON.parse(Buffer.from(newToken.split('.')[0], 'base64url').toString()).kid, 'k2')
  t.equal((await app.inject({ url: '/protected', headers: bearer(newToken) })).statusCode, 200)
  const payload = JSON.parse(Buffer.from(newToken.split('.')[1], 'base64url').toString())
  const unknownKid = testSigner({ key: newKey.secret, kid: 'k9', typ: 'at+jwt', expiresIn: 60_000 })({ ...payload, iat: undefined, exp: undefined })
  t.equal((await app.inject({ url: '/protected', headers: bearer(unknownKid) })).json().code, 'TOKEN_INVALID', 'an unknown kid is refused')
  const wrongKid = testSigner({ key: newKey.secret, kid: 'k1', typ: 'at+jwt', expiresIn: 60_000 })({ ...payload, iat: undefined, exp: undefined })
  t.equal((await app.inject({ url: '/protected', headers: bearer(wrongKid) })).json().code, 'TOKEN_INVALID', 'a kid naming another key is refused')

  const retired = await appWith({ secret: undefined, keys: [newKey], refreshTokenSecret: TEST_SECRET })
  t.teardown(() => retired.close())
  t.equal((await retired.inject({ url: '/protected', headers: bearer(oldToken) })).json().code, 'TOKEN_INVALID', 'once the old key is removed its tokens stop')
})

t.test('the host app keeps its own @fastify/jwt; its tokens are never accepted as access tokens', async (t) => {
  const app = await appWith({}, async (app) => {
    await app.register(fastifyJwt, { secret: TEST_SECRET })
    app.get('/host', async (request) => { await request.jwtVerify(); return request.user })
  })
  t.teardown(() => app.close())
  const hostToken = app.jwt.sign({ sub: 'alice', sid: 's', jti: 'j', ver: 0 })
  t.equal((await app.inject({ url: '/host', headers: bearer(hostToken) })).statusCode, 200, 'the host JWT works on the host route')
  t.equal((await app.inject({ url: '/protected', headers: bearer(hostToken) })).json().code, 'TOKEN_INVALID', 'but not as an access token, though it shares the secret')
  const ours = await loginAs(app)
  t.equal((await app.inject({ url: '/protected', headers: bearer(ours) })).statusCode, 200)
})

t.test('fastify.revokeAccessToken revokes one token until it expires', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const token = await loginAs(app)
  const other = await loginAs(app)
  const claims = (await app.inject({ url: '/protected', headers: bearer(token) })).json().claims
  await app.revocableJwt.revokeAccessToken(claims)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'TOKEN_REVOKED')
  t.equal((await app.inject({ url: '/protected', headers: bearer(other) })).statusCode, 200, 'another token of the same user still works')
  await t.rejects(app.revocableJwt.revokeAccessToken({ sub: '', jti: 'x', exp: 1 }), { message: 'claims.sub must be a non-empty, well-formed string of at most 128 bytes' })
  await t.rejects(app.revocableJwt.revokeAccessToken({ sub: 'a', jti: '', exp: 1 }), { message: 'claims.jti must be a non-empty string' })
})

t.test('fastify.bumpTokenVersion invalidates every older token of that user only', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const alice = await loginAs(app, 'alice')
  const bob = await loginAs(app, 'bob')
  const bumped: unknown[] = []
  app.revocableJwt.events.on('tokenVersionBumped', (event) => bumped.push(event))
  t.equal(await app.revocableJwt.bumpTokenVersion('alice'), 1)
  t.equal(await app.revocableJwt.getTokenVersion('alice'), 1)
  t.same(bumped, [{ userId: 'alice', version: 1 }])
  t.equal((await app.inject({ url: '/protected', headers: bearer(alice) })).json().code, 'TOKEN_REVOKED')
  t.equal((await app.inject({ url: '/protected', headers: bearer(bob) })).statusCode, 200)
  const fresh = await loginAs(app, 'alice')
  t.equal((await app.inject({ url: '/protected', headers: bearer(fresh) })).json().version, 1, 'new tokens carry the new version')
  await t.rejects(app.revocableJwt.bumpTokenVersion(42 as unknown as string), { message: 'user id must be a non-empty, well-formed string of at most 128 bytes' })
})

t.test('an app that keeps token versions on its own user record supplies the lookup', async (t) => {
  const versions = new Map([['alice', 3]])
  let lookups = 0
  const app = await appWith({
    getTokenVersion: async (userId) => { lookups++; return versions.get(userId) ?? 0 },
    bumpTokenVersion: async (userId) => { versions.set(userId, (versions.get(userId) ?? 0) + 1); return versions.get(userId) as number }
  })
  t.teardown(() => app.close())
  const token = await loginAs(app)
  t.equal(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).ver, 3)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  versions.set('alice', 4)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'TOKEN_REVOKED')
  t.ok(lookups >= 3)
  const fresh = await loginAs(app)
  t.equal((await app.inject({ url: '/protected', headers: bearer(fresh) })).statusCode, 200)
  t.equal(await app.revocableJwt.bumpTokenVersion('alice'), 5, 'bumping goes to the app\'s record')
  t.equal(versions.get('alice'), 5)
  t.equal((await app.inject({ url: '/protected', headers: bearer(fresh) })).json().code, 'TOKEN_REVOKED', 'and takes effect at once')
})

t.test('issueTokens refuses a bad subject and reserved claims', async (t) => {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET })
  app.post<{ Body: unknown }>('/login', async (request, reply) => reply.issueTokens(request.body as never))
  await app.ready()
  t.teardown(() => app.close())
  for (const [body, message] of [
    [{ id: '' }, 'subject.id must be a non-empty, well-formed string of at most 128 bytes'],
    [{ id: 7 }, 'subject.id must be a non-empty, well-formed string of at most 128 bytes'],
    [{ id: 'a'.repeat(129) }, 'subject.id must be a non-empty, well-formed string of at most 128 bytes'],
    [{ id: '€'.repeat(43) }, 'subject.id must be a non-empty, well-formed string of at most 128 bytes'],
    [{ id: 'a', claims: { role: 'admin' } }, 'issueTokens takes no claims: give the accessTokenClaims option, so that refreshed tokens carry them too']
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/login', payload: body })
    t.equal(res.statusCode, 500, message)
    t.equal(res.json().message, message)
    t.equal(res.cookies.length, 0, 'no cookie set')
  }
})

t.test('the plugins register alone, and issuance without its checks or keys fails at boot naming them', async (t) => {
  const app = Fastify()
  await app.register(revocableJwtTokenVersions)
  await app.register(revocableJwtRevocation)
  await app.register(revocableJwtAuthenticate, { secret: TEST_SECRET })
  await app.register(revocableJwtIssuance)
  app.post('/login', async (_request, reply) => reply.issueTokens({ id: 'alice' }))
  app.get('/protected', { onRequest: [app.revocableJwt.authenticate] }, async () => 'ok')
  await app.ready()
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh' })).statusCode, 404, 'no refresh route unless registered')
  const token = (await app.inject({ method: 'POST', url: '/login' })).json().accessToken
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).body, 'ok')

  const noChecks = Fastify()
  noChecks.register(revocableJwtAuthenticate, { secret: TEST_SECRET })
  noChecks.register(revocableJwtIssuance)
  await t.rejects(async () => { await noChecks.ready() }, { message: /revocableJwtIssuance needs revocableJwtTokenVersions/ })

  const noAuthenticate = Fastify()
  noAuthenticate.register(revocableJwtTokenVersions)
  noAuthenticate.register(revocableJwtIssuance)
  await t.rejects(async () => { await noAuthenticate.ready() }, { message: /fastify-revocable-jwt-authenticate/ })

  const publicKeyOnly = Fastify()
  const { publicKey } = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  publicKeyOnly.register(revocableJwtTokenVersions)
  publicKeyOnly.register(revocableJwtAuthenticate, { algorithm: 'EdDSA', keys: [{ kid: 'k1', publicKey }] })
  publicKeyOnly.register(revocableJwtIssuance, { refreshTokenSecret: TEST_SECRET })
  await t.rejects(async () => { await publicKeyOnly.ready() }, { message: 'revocableJwtIssuance needs a signing key: give secret (or keys with a secret) to revocableJwtAuthenticate' })
})

t.test('the routes can be switched off and moved under another prefix', async (t) => {
  const app = await appWith({ prefix: '/api/session', routes: { logout: false, logoutAll: false, sessions: false } })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login?user=alice' })
  const cookie = login.cookies.find(c => c.name === 'refresh_token')
  t.equal(cookie?.path, '/api/session')
  const refresh = await app.inject({ method: 'POST', url: '/api/session/refresh', cookies: { refresh_token: cookie?.value as string } })
  t.equal(refresh.statusCode, 200)
  for (const url of ['/api/session/logout', '/api/session/logout-all']) {
    t.equal((await app.inject({ method: 'POST', url })).statusCode, 404, url)
  }
  t.equal((await app.inject({ url: '/api/session/sessions' })).statusCode, 404)
})

t.test('events report reuse and revoked sessions; a throwing listener does not break the request', async (t) => {
  let now = Date.now()
  const app = await appWith({ now: () => now })
  t.teardown(() => app.close())
  const seen: Array<[string, unknown]> = []
  app.revocableJwt.events.on('refreshTokenReused', (e) => seen.push(['reused', e]))
  app.revocableJwt.events.on('sessionRevoked', (e) => { seen.push(['revoked', e]); throw new Error('listener bug') })
  const login = await app.inject({ method: 'POST', url: '/login?user=alice', headers: { 'user-agent': 'thief-browser' } })
  const first = login.cookies.find(c => c.name === 'refresh_token')?.value as string
  await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: first } })
  now += 60_000
  const reuse = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: first }, headers: { 'user-agent': 'thief-browser' } })
  t.equal(reuse.json().code, 'REFRESH_TOKEN_REUSED', 'still answered properly')
  t.match(seen, [
    ['revoked', { userId: 'alice', sessionId: String, reason: 'reuse' }],
    ['reused', { userId: 'alice', sessionId: String, userAgent: 'thief-browser', ip: '127.0.0.1' }]
  ])
})

t.test('the verify cache can be turned off without changing results', async (t) => {
  const app = await appWith({ verifyCacheSize: 0 })
  t.teardown(() => app.close())
  const token = await loginAs(app)
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  const claims = (await app.inject({ url: '/protected', headers: bearer(token) })).json().claims
  await app.revocableJwt.revokeAccessToken(claims)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'TOKEN_REVOKED')
})

t.test('claims from accessTokenClaims are in every access token, refreshed ones too', async (t) => {
  let role = 'reader'
  const app = await appWith({ accessTokenClaims: async () => ({ role }) })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login?user=alice' })
  t.equal((await app.inject({ url: '/protected', headers: bearer(login.json().accessToken) })).json().claims.role, 'reader')
  role = 'admin'
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: login.cookies.find(c => c.name === 'refresh_token')?.value as string } })
  t.equal(refresh.statusCode, 200)
  t.equal((await app.inject({ url: '/protected', headers: bearer(refresh.json().accessToken) })).json().claims.role, 'admin', 'a role change shows at the next refresh')

  const reserved = await appWith({ accessTokenClaims: () => ({ sub: 'root' }) })
  t.teardown(() => reserved.close())
  const res = await reserved.inject({ method: 'POST', url: '/login?user=alice' })
  t.equal(res.statusCode, 503, 'the app\'s hook is at fault: fail closed, and say nothing of its inside')
  t.same(res.json(), { statusCode: 503, code: 'AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Authentication store unavailable' })
  t.equal(res.cookies.length, 0, 'no session was started')
})

t.test('the host app may register its own @fastify/jwt after this plugin', async (t) => {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET })
  await app.register(fastifyJwt, { secret: 'host-secret-host-secret-host-secret!!' })
  app.get('/protected', { onRequest: [app.revocableJwt.authenticate] }, async () => 'ok')
  app.get('/host', async (request) => { await request.jwtVerify(); return 'host ok' })
  app.post('/login', async (_request, reply) => reply.issueTokens({ id: 'alice' }))
  await app.ready()
  t.teardown(() => app.close())
  const ours = (await app.inject({ method: 'POST', url: '/login' })).json().accessToken
  t.equal((await app.inject({ url: '/protected', headers: bearer(ours) })).body, 'ok')
  t.equal((await app.inject({ url: '/host', headers: bearer(app.jwt.sign({ sub: 'x' })) })).body, 'host ok')
  t.equal((await app.inject({ url: '/host', headers: bearer(ours) })).statusCode, 401, 'and neither accepts the other\'s tokens')
})

t.test('getTokenVersion without bumpTokenVersion is refused at boot', async (t) => {
  const app = Fastify()
  app.register(revocableJwt, { secret: TEST_SECRET, getTokenVersion: async () => 0 })
  await t.rejects(async () => { await app.ready() }, { message: 'getTokenVersion and bumpTokenVersion go together: give both or neither' })
})

t.test('a version lookup that answers garbage fails closed with 503', async (t) => {
  let version: unknown = 0
  const app = await appWith({ getTokenVersion: async () => version as number, bumpTokenVersion: async () => 1 })
  t.teardown(() => app.close())
  const token = await loginAs(app)
  version = '0'
  const res = await app.inject({ method: 'POST', url: '/login?user=alice' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  const protectedRes = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(protectedRes.statusCode, 503, 'authenticate reads the version through the same check')
  t.equal(protectedRes.json().code, 'AUTH_STORE_UNAVAILABLE')
})

t.test('verified claims are frozen: a handler cannot change what the next request sees', async (t) => {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET })
  app.post('/login', async (_request, reply) => reply.issueTokens({ id: 'alice' }))
  app.get('/escalate', { onRequest: [app.revocableJwt.authenticate] }, async (request) => {
    try {
      (request.auth?.claims as Record<string, unknown>).role = 'admin'
    } catch {}
    return request.auth?.claims
  })
  await app.ready()
  t.teardown(() => app.close())
  const token = (await app.inject({ method: 'POST', url: '/login' })).json().accessToken
  t.equal((await app.inject({ url: '/escalate', headers: bearer(token) })).json().role, undefined)
  t.equal((await app.inject({ url: '/escalate', headers: bearer(token) })).json().role, undefined, 'the cached claims were not changed')
})
