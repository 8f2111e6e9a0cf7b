// The hardening that lives in the Redis adapter: sessions per user stay bounded (and so
// do listing and logout-all), revoking another user's session writes nothing, and ids
// that UTF-8 cannot carry losslessly never reach a key.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import revocableJwt, { type RevocableJwtOptions } from '../lib/index.js'
import { DEFAULT_REDIS_KEY_PREFIX, userKeyBase } from '../lib/stores/redis.js'
import { RedisServer } from './redis-server.js'
import { TEST_SECRET, bearer } from './helper.js'

const server = await RedisServer.start()
t.teardown(() => server.close())
const admin = new Redis(server.url)
t.teardown(() => admin.quit())

async function buildApp (options: Partial<RevocableJwtOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, redis: { url: server.url }, ...options } as RevocableJwtOptions)
  app.post<{ Querystring: { user: string } }>('/auth/login', async (request, reply) => reply.issueTokens({ id: request.query.user }))
  await app.ready()
  return app
}

async function login (app: FastifyInstance, user: string): Promise<{ accessToken: string, refreshToken: string }> {
  const res = await app.inject({ method: 'POST', url: `/auth/login?user=${encodeURIComponent(user)}` })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return { accessToken: res.json().accessToken, refreshToken: res.cookies.find(c => c.name === 'refresh_token')?.value as string }
}

/** Every key in the server with its value's type and TTL, to compare before and after. */
async function snapshot (): Promise<string[]> {
  const keys = (await admin.keys('*')).sort()
  return await Promise.all(keys.map(async key => `${key} ${await admin.type(key)}`))
}

t.test('a user holds at most maxSessions sessions: logins beyond it end the least recently used', async (t) => {
  const app = await buildApp({ maxSessions: 5 })
  t.teardown(() => app.close())
  const first = await login(app, 'busy')
  for (let i = 0; i < 30; i++) await login(app, 'busy')
  const last = await login(app, 'busy')
  const list = await app.inject({ url: '/auth/sessions', headers: bearer(last.accessToken) })
  t.equal(list.json().length, 5, 'the list holds the limit, not every login')
  const base = userKeyBase(DEFAULT_REDIS_KEY_PREFIX, 'busy')
  t.equal((await admin.keys(`${base}S:*`)).length, 5, 'and so does Redis')
  t.equal(await admin.zcard(`${base}ru`), 5, 'the user index too')
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(first.accessToken) })).json().code, 'TOKEN_REVOKED', 'the evicted session\'s access token stops')
  const all = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(last.accessToken) })
  t.equal(all.statusCode, 204)
  t.same([...await admin.keys(`${base}S:*`), ...await admin.keys(`${base}ru`)], [], 'logout-all left no session key')
})

t.test('revoking a session the caller does not own writes nothing to Redis', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const mallory = await login(app, 'mallory')
  const alice = await login(app, 'alice')
  const aliceSession = (await app.inject({ url: '/auth/sessions', headers: bearer(alice.accessToken) })).json()[0].id
  const before = await snapshot()
  for (const id of [aliceSession, 'AAAAAAAAAAAAAAAAAAAAAA', 'x'.repeat(64)]) {
    const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(mallory.accessToken) })
    t.equal(res.statusCode, 404)
    t.equal(res.json().code, 'SESSION_NOT_FOUND')
  }
  t.same(await snapshot(), before, 'no key was written')
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(alice.accessToken) })).statusCode, 200, 'alice\'s session lives')
})

t.test('an id with a lone surrogate is refused: it would share every key with its U+FFFD twin', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const twin = await login(app, '\uFFFDx')
  const before = await snapshot()
  await t.rejects(app.revocableJwt.bumpTokenVersion('\uD800x'), TypeError)
  await t.rejects(app.revocableJwt.revokeSession('\uD800x', 'AAAAAAAAAAAAAAAAAAAAAA'), TypeError)
  await t.rejects(app.revocableJwt.logoutAll('\uD800x'), TypeError)
  t.same(await snapshot(), before, 'nothing written under the twin\'s keys')
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(twin.accessToken) })).statusCode, 200, 'the twin is untouched')
})
