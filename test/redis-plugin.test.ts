// The `redis` option of the plugin: which client the Redis stores use, who closes
// it, what is refused, and that one protected request costs one Redis command.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import { Redis } from 'ioredis'
import revocableJwt, { MemoryRefreshTokenStore, type RevocableJwtOptions } from '../lib/index.js'
import { RedisRefreshTokenStore, RedisRevocationStore } from '../lib/stores/redis.js'
import { RedisServer } from './redis-server.js'
import { TEST_SECRET, bearer } from './helper.js'

const server = await RedisServer.start()
t.teardown(() => server.close())
const admin = new Redis(server.url)
t.teardown(() => admin.quit())

type Setup = (app: FastifyInstance) => Promise<void>

/** A bare app with the plugin, a login route that issues tokens for `?user=` and a protected `/me`. */
async function buildApp (options: Partial<RevocableJwtOptions>, setup?: Setup): Promise<FastifyInstance> {
  const app = Fastify()
  await setup?.(app)
  await app.register(revocableJwt, { secret: TEST_SECRET, cookie: { secure: false }, ...options })
  app.post<{ Querystring: { user: string } }>('/login', async function login (request, reply) {
    return reply.issueTokens({ id: request.query.user })
  })
  app.get('/me', { onRequest: app.revocableJwt.authenticate }, async function me (request) {
    return { id: request.auth?.userId }
  })
  return app
}

async function login (app: FastifyInstance, user: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: `/login?user=${encodeURIComponent(user)}` })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json().accessToken
}

async function commandStats (): Promise<Map<string, number>> {
  const info = await admin.info('commandstats')
  const stats = new Map<string, number>()
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(match[1], Number(match[2]))
  return stats
}

/** The connections the private server holds, as CLIENT LIST names them (the admin's own excluded). */
async function connectedClients (): Promise<number> {
  return (await admin.client('LIST') as string).trim().split('\n').length - 1
}

t.test('with redis.url the plugin connects one client shared by both stores, and closing the app closes it', async (t) => {
  const keyPrefix = `url-${process.pid}:`
  const before = await connectedClients()
  const app = await buildApp({ redis: { url: server.url, keyPrefix } })
  t.teardown(() => app.close())
  await app.ready()
  t.ok(app.revocableJwt.revocationStore instanceof RedisRevocationStore)
  t.ok(app.revocableJwt.refreshTokenStore instanceof RedisRefreshTokenStore)
  t.equal(await connectedClients(), before + 1, 'one connection for both stores')
  t.notOk(app.hasDecorator('redis'), 'the app\'s fastify.redis is left to the app')
  const token = await login(app, 'alice')
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 200)
  t.ok((await admin.keys(`${keyPrefix}*`)).length > 0, 'the refresh token is stored in Redis')
  await app.close()
  t.equal(await connectedClients(), before, 'the client the plugin created is closed with the app')
})

t.test('a Redis that cannot be reached stops the boot within the store timeout, naming the address and the cause', async (t) => {
  for (const url of ['redis://:secret@127.0.0.1:1', 'redis://127.0.0.1:1/0']) {
    const started = Date.now()
    const app = Fastify()
    app.register(revocableJwt, { secret: TEST_SECRET, redis: url, storeTimeout: '1s' })
    const err = await app.ready().then(() => null, (err: Error) => err)
    t.ok(err !== null, `${url} refused`)
    t.match(err?.message, /^fastify-revocable-jwt: cannot reach Redis at redis:\/\/(:\*\*\*@)?127\.0\.0\.1:1\/?0? \(the redis option\): /)
    t.notMatch(err?.message, /secret/, 'the password is not in the message')
    t.match((err?.cause as Error | undefined)?.message, /ECONNREFUSED|closed/)
    t.ok(Date.now() - started < 3000, `failed in ${Date.now() - started} ms`)
    await app.close()
  }
})

t.test('closing the app while Redis is down resolves', async (t) => {
  const doomed = await RedisServer.start()
  t.teardown(() => doomed.close())
  const app = await buildApp({ redis: doomed.url })
  await app.ready()
  await doomed.stop()
  await t.resolves(app.close(), 'a graceful shutdown during an outage does not throw')
})

t.test('a Redis URL string is accepted as redis.url', async (t) => {
  const app = await buildApp({ redis: server.url })
  t.teardown(() => app.close())
  await app.ready()
  t.ok(app.revocableJwt.revocationStore instanceof RedisRevocationStore)
})

t.test('the app\'s own default @fastify/redis client is reused and left open', async (t) => {
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const app = await buildApp({ redis: {} }, async (app) => { await app.register(fastifyRedis, { client }) })
  await app.ready()
  t.equal(app.redis, client)
  const token = await login(app, 'bob')
  await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) })
  t.equal(await client.get(`rjwt:{${Buffer.from('bob').toString('base64url')}}:v`), '1', 'logout-all bumped the version through that client')
  await app.close()
  t.equal(client.status, 'ready', 'a client the app registered itself is not closed by the plugin')
})

t.test('a named @fastify/redis instance is reused', async (t) => {
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const app = await buildApp({ redis: { namespace: 'auth', keyPrefix: 'ns:' } }, async (app) => {
    await app.register(fastifyRedis, { client, namespace: 'auth' })
  })
  t.teardown(() => app.close())
  await app.ready()
  const token = await login(app, 'carol')
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 200)
  t.ok((await client.keys('ns:*')).length > 0)
})

t.test('an explicit store wins over the Redis default', async (t) => {
  const refreshTokenStore = new MemoryRefreshTokenStore()
  const app = await buildApp({ redis: server.url, refreshTokenStore })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.revocableJwt.refreshTokenStore, refreshTokenStore)
  t.ok(app.revocableJwt.revocationStore instanceof RedisRevocationStore)
})

t.test('bad redis options stop the boot with a message naming the option', async (t) => {
  const cases: Array<[RevocableJwtOptions['redis'], string]> = [
    [5 as never, 'redis must be a Redis URL or an object { namespace, url, clientOptions, keyPrefix }'],
    ['', 'redis.url must be a non-empty string'],
    [{ namespace: '' }, 'redis.namespace must be a non-empty string'],
    [{ url: server.url, clientOptions: 'x' as never }, 'redis.clientOptions must be an object of ioredis options'],
    [{ url: server.url, keyPrefix: 'a{b}:' }, 'redis.keyPrefix must be a string without "{" or "}" (they would change the Redis Cluster hash slot)'],
    [{}, 'redis: @fastify/redis is not registered as fastify.redis; give redis.url or redis.clientOptions to connect'],
    [{ namespace: 'auth' }, 'redis: @fastify/redis is not registered as fastify.redis.auth; give redis.url or redis.clientOptions to connect']
  ]
  for (const [redis, message] of cases) {
    const app = Fastify()
    app.register(revocableJwt, { secret: TEST_SECRET, redis })
    await t.rejects(async () => { await app.ready() }, { message }, message)
  }
})

t.test('a URL next to an already registered client is refused rather than ignored', async (t) => {
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const app = Fastify()
  app.register(fastifyRedis, { client })
  app.register(revocableJwt, { secret: TEST_SECRET, redis: { url: server.url } })
  await t.rejects(async () => { await app.ready() }, {
    message: 'redis.url and redis.clientOptions configure a client of the plugin\'s own, but @fastify/redis is already registered as fastify.redis: leave them out to use that client'
  })
})

t.test('one protected request is exactly one Redis command: one MGET', async (t) => {
  const app = await buildApp({ redis: { url: server.url } })
  t.teardown(() => app.close())
  await app.ready()
  const token = await login(app, 'dave')
  // Verified once, so the verify cache is warm and only the store call is measured.
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 200)
  const N = 25
  await admin.config('RESETSTAT')
  for (let i = 0; i < N; i++) {
    const res = await app.inject({ url: '/me', headers: bearer(token) })
    t.equal(res.statusCode, 200)
  }
  const stats = await commandStats()
  stats.delete('info')
  stats.delete('config|resetstat')
  t.same(Object.fromEntries(stats), { mget: N }, `${N} requests made ${N} MGETs and nothing else`)
})

t.test('a revoked token is refused after its one MGET as well', async (t) => {
  const app = await buildApp({ redis: { url: server.url } })
  t.teardown(() => app.close())
  await app.ready()
  const token = await login(app, 'erin')
  const claims = await app.revocableJwt.verifyAccessToken(token)
  await app.revocableJwt.revokeAccessToken(claims)
  await admin.config('RESETSTAT')
  const res = await app.inject({ url: '/me', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOKEN_REVOKED')
  const stats = await commandStats()
  stats.delete('info')
  stats.delete('config|resetstat')
  t.same(Object.fromEntries(stats), { mget: 1 })
})

t.test('login, refresh, logout and logout-all cost the commands the docs list', async (t) => {
  const app = await buildApp({ redis: { url: server.url } })
  t.teardown(() => app.close())
  await app.ready()
  // Commands the clients send, as MONITOR sees them: those a script runs are marked
  // `lua` and not counted. ioredis sends a script as EVAL the first time on a connection
  // and EVALSHA after, so both count as one `script`.
  const monitor = await admin.monitor()
  t.teardown(() => monitor.disconnect())
  const seen: string[] = []
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') seen.push(args[0].toLowerCase())
  })
  async function measure (run: () => Promise<unknown>): Promise<Record<string, number>> {
    // A marker through MONITOR tells when every earlier command has been seen.
    const settle = async (): Promise<void> => {
      const marker = `marker-${Math.random()}`
      await admin.get(marker)
      while (!seen.includes('get') || !seenMarkers.has(marker)) await new Promise(resolve => setImmediate(resolve))
    }
    await settle()
    seen.length = 0
    await run()
    await settle()
    const sent: Record<string, number> = {}
    for (const name of seen) {
      const key = name === 'eval' || name === 'evalsha' ? 'script' : name
      sent[key] = (sent[key] ?? 0) + 1
    }
    // The settling marker's own GET.
    sent.get -= 1
    if (sent.get === 0) delete sent.get
    return sent
  }
  const seenMarkers = new Set<string>()
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0].toLowerCase() === 'get' && args[1]?.startsWith('marker-')) seenMarkers.add(args[1])
  })
  let token = ''
  t.same(await measure(async () => { token = await login(app, 'frank') }), { script: 1 }, 'login: the create script, which reads the version itself')
  const cookie = refreshCookieOf(await app.inject({ method: 'POST', url: '/login?user=frank' }))
  t.same(await measure(async () => {
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: cookie } })
    t.equal(res.statusCode, 200)
  }), { script: 1 }, 'refresh: the rotate script, which reads the version itself')
  t.same(await measure(async () => {
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) })
    t.equal(res.statusCode, 204)
  }), { mget: 1, set: 2, script: 1 }, 'logout: MGET, then SET jti, SET sid and the delete-session script together')
  const other = await login(app, 'frank')
  t.same(await measure(async () => {
    const res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(other) })
    t.equal(res.statusCode, 204)
  }), { mget: 1, incr: 1, script: 1 }, 'logout-all: MGET, then INCR and the delete-user script together')
})

t.test('a login given the version read before the credentials, and stores built apart, read the version with a GET', async (t) => {
  const keyPrefix = `apart-${process.pid}:`
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const app = await buildApp({
    revocationStore: new RedisRevocationStore({ client, keyPrefix }),
    refreshTokenStore: new RedisRefreshTokenStore({ client, keyPrefix })
  })
  t.teardown(() => app.close())
  await app.ready()
  await admin.config('RESETSTAT')
  await login(app, 'gina')
  const stats = await commandStats()
  t.equal(stats.get('get'), 1, 'the version is read on its own')
  t.equal((stats.get('eval') ?? 0) + (stats.get('evalsha') ?? 0), 1)
})

t.test('with the versions read in the scripts, a bump is seen by the next login and refresh', async (t) => {
  const app = await buildApp({ redis: { url: server.url, keyPrefix: `bump-${process.pid}:` } })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.revocableJwt.refreshTokenStore.readsTokenVersions, true)
  const first = await app.inject({ method: 'POST', url: '/login?user=hana' })
  await app.revocableJwt.bumpTokenVersion('hana')
  const stale = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookieOf(first) } })
  t.same([stale.statusCode, stale.json().code], [401, 'REFRESH_TOKEN_INVALID'], 'the session began before the bump')
  const fresh = await app.inject({ method: 'POST', url: '/login?user=hana' })
  t.equal((await app.revocableJwt.verifyAccessToken(fresh.json().accessToken)).ver, 1, 'a new login carries the bumped version')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookieOf(fresh) } })
  t.equal(refreshed.statusCode, 200)
  t.equal((await app.revocableJwt.verifyAccessToken(refreshed.json().accessToken)).ver, 1)
})

function refreshCookieOf (res: { cookies: Array<{ name: string, value: string }> }): string {
  return res.cookies.find(c => c.name === 'refresh_token')?.value as string
}
