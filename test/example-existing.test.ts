// The existing @fastify/jwt service of example/existing: its own tokens, its own
// fastify.authenticate, and only the package's two checks added.
import t from 'tap'
import { createSigner } from 'fast-jwt'
import type { FastifyInstance } from 'fastify'
import { build } from '../example/existing/app.js'
import { RedisServer } from './redis-server.js'
import { startServerProcess, stopServerProcess, type ServerProcess } from './processes.js'
import { TEST_SECRET, bearer } from './helper.js'

async function app (): Promise<FastifyInstance> {
  const built = await build({ env: { JWT_SECRET: TEST_SECRET } })
  await built.ready()
  return built
}

async function login (app: FastifyInstance, username: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { username } })
  if (res.statusCode !== 200) throw new Error(`login: ${res.statusCode} ${res.body}`)
  return res.json().token
}

async function profile (app: FastifyInstance, token: string): Promise<number> {
  return (await app.inject({ url: '/profile', headers: bearer(token) })).statusCode
}

t.test('login signs the service\'s own token: sub, a jti, its own secret', async (t) => {
  const service = await app()
  t.teardown(() => service.close())
  const token = await login(service, 'ada')
  const claims = service.jwt.verify<{ sub: string, jti: string, ver: number }>(token)
  t.match(claims, { sub: 'ada', jti: /^[0-9a-f-]{36}$/, ver: 0 })
  t.same((await service.inject({ url: '/profile', headers: bearer(token) })).json(), { username: 'ada' })
  for (const payload of [{}, { username: ['ada'] }, { username: 7 }, { username: '' }, { username: 'ada', admin: true }]) {
    const res = await service.inject({ method: 'POST', url: '/login', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
  }
})

t.test('a missing or foreign token is a 401 from the service\'s own authenticate', async (t) => {
  const service = await app()
  t.teardown(() => service.close())
  t.equal((await service.inject({ url: '/profile' })).statusCode, 401)
  const foreign = createSigner({ key: 'another-secret-another-secret-another!' })({ sub: 'ada', jti: 'j' })
  t.equal(await profile(service, foreign), 401)
})

t.test('logout ends the token in hand at once; the user\'s other tokens keep working', async (t) => {
  const service = await app()
  t.teardown(() => service.close())
  const laptop = await login(service, 'ada')
  const phone = await login(service, 'ada')
  t.equal((await service.inject({ method: 'POST', url: '/logout', headers: bearer(laptop) })).statusCode, 204)
  const after = await service.inject({ url: '/profile', headers: bearer(laptop) })
  t.equal(after.statusCode, 401)
  t.equal(after.json().code, 'TOKEN_REVOKED')
  t.equal(await profile(service, phone), 200)
})

t.test('logout-all ends every token of the user issued before, and only that user\'s', async (t) => {
  const service = await app()
  t.teardown(() => service.close())
  const one = await login(service, 'ada')
  const two = await login(service, 'ada')
  const other = await login(service, 'bob')
  t.equal((await service.inject({ method: 'POST', url: '/logout-all', headers: bearer(one) })).statusCode, 204)
  t.equal(await profile(service, one), 401)
  t.equal(await profile(service, two), 401)
  t.equal(await profile(service, other), 200)
  const fresh = await login(service, 'ada')
  t.equal(await profile(service, fresh), 200, 'a login after it carries the new version')
})

t.test('tokens the service issued before adopting the checks: valid until logout-all, which ends them', async (t) => {
  const service = await app()
  t.teardown(() => service.close())
  // No jti, no ver: what the service signed before it added the package.
  const old = service.jwt.sign({ sub: 'ada' } as never)
  const otherOld = service.jwt.sign({ sub: 'ada' } as never)
  t.equal(await profile(service, old), 200, 'a token without ver counts as version 0')
  t.equal((await service.inject({ method: 'POST', url: '/logout', headers: bearer(old) })).statusCode, 204, 'without a jti, logout ends every token of the user')
  t.equal(await profile(service, old), 401)
  t.equal(await profile(service, otherOld), 401)
})

t.test('two instances on one Redis behave as one service', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.close())
  const env = { JWT_SECRET: TEST_SECRET, REDIS_URL: redis.url }
  const [a, b] = await Promise.all([startServerProcess('example/existing/server.ts', env), startServerProcess('example/existing/server.ts', env)])
  t.teardown(() => Promise.all([stopServerProcess(a), stopServerProcess(b)]))

  async function call (server: ServerProcess, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number, body: any }> {
    const res = await fetch(`${server.base}${path}`, {
      method,
      headers: { ...(token !== undefined && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await res.text()
    return { status: res.status, body: text === '' ? null : JSON.parse(text) }
  }

  const first = (await call(a, 'POST', '/login', undefined, { username: 'ada' })).body.token
  const second = (await call(b, 'POST', '/login', undefined, { username: 'ada' })).body.token
  t.equal((await call(b, 'GET', '/profile', first)).status, 200, 'a token from one instance works on the other')
  t.equal((await call(b, 'POST', '/logout', first)).status, 204)
  t.equal((await call(a, 'GET', '/profile', first)).status, 401, 'a logout on one is enforced by the other at once')
  t.equal((await call(a, 'GET', '/profile', second)).status, 200)
  t.equal((await call(a, 'POST', '/logout-all', second)).status, 204)
  const afterAll = await call(b, 'GET', '/profile', second)
  t.same([afterAll.status, afterAll.body.code], [401, 'TOKEN_REVOKED'], 'so is a logout-all')
  const fresh = (await call(b, 'POST', '/login', undefined, { username: 'ada' })).body.token
  t.equal((await call(a, 'GET', '/profile', fresh)).status, 200, 'a new login carries the version both see')
})
