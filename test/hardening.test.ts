// What an attacker with an account, a sibling subdomain or a hand-made token can still
// try against the package, through inject() on bare apps with memory stores.
import t from 'tap'
import { createHmac } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import revocableJwt, { type RevocableJwtOptions } from '../lib/index.js'
import { TEST_SECRET, bearer, testSigner } from './helper.js'

async function appWith (options: Partial<RevocableJwtOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, ...options } as RevocableJwtOptions)
  app.post<{ Querystring: { user: string, version?: string } }>('/auth/login', async (request, reply) =>
    reply.issueTokens({ id: request.query.user, ...(request.query.version !== undefined && { tokenVersion: Number(request.query.version) }) }))
  app.get('/me', { onRequest: [app.revocableJwt.authenticate] }, async (request) => request.auth)
  await app.ready()
  return app
}

async function loginAs (app: FastifyInstance, user: string, version?: number) {
  const res = await app.inject({ method: 'POST', url: `/auth/login?user=${encodeURIComponent(user)}${version === undefined ? '' : `&version=${version}`}` })
  if (res.statusCode !== 200) throw new Error(res.body)
  return { accessToken: res.json().accessToken as string, refreshToken: res.cookies.find(c => c.name === 'refresh_token')?.value as string }
}

const refresh = (app: FastifyInstance, cookie: string, host = 'app.example.com') =>
  app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, host } })

t.test('changeCredentials: a login that read the version before the credentials changed does not outlive the change', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const before = await loginAs(app, 'ada')
  let readBefore = -1
  let readDuring = -1
  readBefore = await app.revocableJwt.getTokenVersion('ada')
  await app.revocableJwt.changeCredentials('ada', async () => {
    // A login that checks the old password now read the version after the first bump.
    readDuring = await app.revocableJwt.getTokenVersion('ada')
    t.equal((await app.inject({ url: '/me', headers: bearer(before.accessToken) })).json().code, 'TOKEN_REVOKED', 'every session ended before the write')
  })
  for (const [name, version] of [['read before the change', readBefore], ['read while the credentials were written', readDuring]] as const) {
    const raced = await loginAs(app, 'ada', version)
    t.equal((await app.inject({ url: '/me', headers: bearer(raced.accessToken) })).json().code, 'TOKEN_REVOKED', name)
    const res = await refresh(app, `refresh_token=${raced.refreshToken}`)
    t.equal(res.json().code, 'REFRESH_TOKEN_INVALID', `${name}: its refresh token too`)
  }
  const after = await loginAs(app, 'ada', await app.revocableJwt.getTokenVersion('ada'))
  t.equal((await app.inject({ url: '/me', headers: bearer(after.accessToken) })).statusCode, 200, 'a login after the change works')
  await t.rejects(app.revocableJwt.changeCredentials('ada', undefined as unknown as () => Promise<void>), { message: 'changeCredentials needs the function that writes the new credentials' })
})

t.test('user ids that are not well-formed UTF-16 are refused everywhere they enter', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/auth/login?user=%ED%A0%80x' })
  t.equal(res.statusCode, 200, 'a querystring decodes a lone surrogate to U+FFFD: an id of its own')
  const lone = '\uD800x'
  await t.rejects(app.revocableJwt.startSession(res.raw.req as never, { id: lone }), { message: /^subject\.id must be a non-empty, well-formed string/ })
  await t.rejects(app.revocableJwt.bumpTokenVersion(lone), TypeError)
  await t.rejects(app.revocableJwt.getTokenVersion(lone), TypeError)
  await t.rejects(app.revocableJwt.logoutAll(lone), TypeError)
  const forged = testSigner({ key: TEST_SECRET, algorithm: 'HS256', typ: 'at+jwt', expiresIn: 60_000 })({ sub: lone, sid: 'sid-1', jti: 'jti-1', ver: 0 })
  t.equal((await app.inject({ url: '/me', headers: bearer(forged) })).json().code, 'TOKEN_INVALID', 'nor as an access token\'s sub')
})

t.test('an HS256 token has one accepted spelling: spare bits in its signature are refused', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const { accessToken } = await loginAs(app, 'ada')
  t.equal((await app.inject({ url: '/me', headers: bearer(accessToken) })).statusCode, 200)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(accessToken.at(-1) as string)
  // 32 bytes are 43 characters: the last carries 4 bits, its 2 low bits are spare.
  const spellings = [1, 2, 3].map(spare => `${accessToken.slice(0, -1)}${alphabet[(last & ~3) | spare]}`)
  for (const spelling of spellings) {
    t.same(Buffer.from(spelling.split('.')[2], 'base64url'), Buffer.from(accessToken.split('.')[2], 'base64url'), 'the same signature bytes')
    const res = await app.inject({ url: '/me', headers: bearer(spelling) })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'TOKEN_INVALID')
  }
})

t.test('claims must be numbers that end, and iat may not lie in the future beyond the clock tolerance', async (t) => {
  const app = await appWith({ clockTolerance: '30s' })
  t.teardown(() => app.close())
  // Signed by hand: signers refuse most of these claims. JSON cannot carry Infinity; 1e400 parses to it.
  const sign = (payload: Record<string, unknown>, json = JSON.stringify(payload)) => {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt' })).toString('base64url')
    const body = Buffer.from(json).toString('base64url')
    return `${header}.${body}.${createHmac('sha256', TEST_SECRET).update(`${header}.${body}`).digest('base64url')}`
  }
  const now = Math.floor(Date.now() / 1000)
  const base = { sub: 'ada', sid: 'sid-1', jti: 'jti-1', ver: 0, iat: now, exp: now + 600 }
  t.equal((await app.inject({ url: '/me', headers: bearer(sign(base)) })).statusCode, 200, 'a well-formed token')
  for (const [name, claims] of [
    ['a string iat', { ...base, iat: String(now) }],
    ['a string exp', { ...base, exp: String(now + 600) }],
    ['an iat an hour ahead', { ...base, iat: now + 3600 }],
    ['an iat a minute ahead (tolerance 30s)', { ...base, iat: now + 60 }],
    ['a string nbf', { ...base, nbf: String(now) }]
  ] as const) {
    const res = await app.inject({ url: '/me', headers: bearer(sign(claims)) })
    t.equal(res.json().code, 'TOKEN_INVALID', name)
  }
  t.equal((await app.inject({ url: '/me', headers: bearer(sign({ ...base, iat: now + 10 })) })).statusCode, 200, 'within the tolerance')
  const endless = sign({}, JSON.stringify({ ...base, exp: 0 }).replace('"exp":0', '"exp":1e400'))
  t.equal((await app.inject({ url: '/me', headers: bearer(endless) })).json().code, 'TOKEN_INVALID', 'exp: 1e400 would never expire')
})

t.test('refresh: the app\'s hooks run only for a stored token; a failing hook is a 503 that keeps its cause', async (t) => {
  const asked: string[] = []
  let fail = false
  const versions = new Map<string, number>()
  const errors: unknown[] = []
  const app = Fastify()
  await app.register(revocableJwt, {
    secret: TEST_SECRET,
    getTokenVersion: async (userId: string) => { asked.push(`version ${userId}`); if (fail) throw new Error('users table down'); return versions.get(userId) ?? 0 },
    bumpTokenVersion: async (userId: string) => { versions.set(userId, (versions.get(userId) ?? 0) + 1); return versions.get(userId) as number },
    accessTokenClaims: async (userId: string) => { asked.push(`claims ${userId}`); return { role: 'reader' } }
  })
  app.post<{ Querystring: { user: string } }>('/auth/login', async (request, reply) => reply.issueTokens({ id: request.query.user }))
  app.addHook('onError', async (_request, _reply, err) => { errors.push(err) })
  await app.ready()
  t.teardown(() => app.close())
  const { refreshToken } = await loginAs(app, 'ada')
  asked.length = 0

  // A cookie naming another user, well-formed but never issued: the hooks never see "bob".
  const forged = `${Buffer.from('bob').toString('base64url')}.${refreshToken.split('.')[1]}.${'A'.repeat(43)}`
  t.equal((await refresh(app, `refresh_token=${forged}`)).json().code, 'REFRESH_TOKEN_INVALID')
  t.same(asked, [], 'no lookup for an id taken from an unverified cookie')

  fail = true
  const failed = await refresh(app, `refresh_token=${refreshToken}`)
  t.same(failed.json(), { statusCode: 503, code: 'AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Authentication store unavailable' })
  t.match(errors.at(-1), { code: 'AUTH_STORE_UNAVAILABLE', cause: { message: 'users table down' } }, 'the hook\'s error is kept as the cause')
  fail = false
  t.equal((await refresh(app, `refresh_token=${refreshToken}`)).statusCode, 200, 'the token was not rotated by the failed attempt')
})

t.test('cookie tossing: a refresh cookie planted by a sibling subdomain neither switches accounts nor logs the user out', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const alice = await loginAs(app, 'alice')
  const mallory = await loginAs(app, 'mallory')

  const switched = await refresh(app, `refresh_token=${mallory.refreshToken}; refresh_token=${alice.refreshToken}`)
  t.equal(switched.statusCode, 401, 'two valid tokens: neither is chosen')
  t.equal(switched.json().code, 'REFRESH_TOKEN_INVALID')
  t.notOk(switched.cookies.some(c => c.name === 'refresh_token' && c.domain === undefined && c.value === ''), 'the app\'s own cookie is not cleared')
  t.ok(switched.cookies.some(c => c.name === 'refresh_token' && c.domain === 'example.com' && c.value === ''), 'the parent domain\'s copy is expired')

  const junk = await refresh(app, `refresh_token=junk; refresh_token=${alice.refreshToken}`)
  t.equal(junk.statusCode, 200, 'a junk planted cookie: the one well-formed token is used')
  const own = junk.cookies.find(c => c.name === 'refresh_token' && c.domain === undefined)
  t.ok(own !== undefined && own.value !== '', 'and the user keeps a session')
  const me = await app.inject({ url: '/me', headers: bearer(junk.json().accessToken) })
  t.equal(me.json().userId, 'alice')

  const malformedTwin = await refresh(app, `refresh_token=${`${own?.value as string}`.replace(/.$/, '')}; refresh_token=${own?.value as string}`)
  t.equal(malformedTwin.statusCode, 200, 'only one of them is well-formed')
  const stillAlice = await app.inject({ url: '/me', headers: bearer(malformedTwin.json().accessToken) })
  t.equal(stillAlice.json().userId, 'alice')
})
