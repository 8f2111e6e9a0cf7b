// The example's login limits with REDIS_URL: two instances in one process share one
// private redis-server, so the counters they keep are the service's, not an instance's.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { RedisServer, rawCommand } from './redis-server.js'
import { build } from './helper.js'

const PASSWORD = 'right password'
const server = await RedisServer.start()
t.teardown(() => server.close())

async function instance (t: Test, rates = { perClient: 100, overall: 1000 }): Promise<FastifyInstance> {
  const app = await build({ env: { REDIS_URL: server.url }, credentialRateLimits: rates })
  t.teardown(() => app.close())
  return app
}

const login = (app: FastifyInstance, email: string, password: string, remoteAddress = '10.0.0.1') =>
  app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress })

t.test('failures count across instances; successes never count, concurrent ones included', async (t) => {
  const [a, b] = [await instance(t), await instance(t)]
  t.equal((await a.inject({ method: 'POST', url: '/auth/register', payload: { email: 'r@example.com', password: PASSWORD } })).statusCode, 201)

  const concurrent = await Promise.all(Array.from({ length: 10 }, (_, i) => login(i % 2 === 0 ? a : b, 'r@example.com', PASSWORD)))
  t.same(concurrent.map(r => r.statusCode), Array(10).fill(200), 'ten concurrent right passwords, five per instance')

  const guesses = await Promise.all(Array.from({ length: 12 }, (_, i) => login(i % 2 === 0 ? a : b, 'r@example.com', 'guess')))
  const codes = guesses.map(r => r.statusCode)
  t.equal(codes.filter(c => c === 401).length, 5, 'five guesses checked across both instances')
  t.equal(codes.filter(c => c === 429).length, 7)
  const limited = await login(b, 'r@example.com', PASSWORD)
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'TOO_MANY_LOGIN_ATTEMPTS')
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 900, 'retry-after from the key\'s TTL')
  t.equal((await login(a, 'r@example.com', PASSWORD, '10.0.0.2')).statusCode, 200, 'another client is not locked out')
})

t.test('the account-wide limit is shared; a client the owner signed in from is exempt', async (t) => {
  const [a, b] = [await instance(t), await instance(t)]
  await a.inject({ method: 'POST', url: '/auth/register', payload: { email: 's@example.com', password: PASSWORD } })
  t.equal((await login(b, 's@example.com', PASSWORD, '10.0.0.1')).statusCode, 200)
  const codes: number[] = []
  for (let i = 0; i < 22; i++) codes.push((await login(i % 2 === 0 ? a : b, 's@example.com', 'guess', `10.3.0.${i}`)).statusCode)
  t.equal(codes.filter(c => c === 401).length, 20)
  t.same(codes.slice(20), [429, 429])
  t.equal((await login(a, 's@example.com', PASSWORD, '10.4.0.1')).statusCode, 429, 'an unknown client waits')
  t.equal((await login(a, 's@example.com', PASSWORD, '10.0.0.1')).statusCode, 200, 'the owner does not')
})

t.test('request limits are counted in Redis, per client and overall', async (t) => {
  // The requests of the tests above are in this minute's overall count.
  await rawCommand(server.port, 'FLUSHALL')
  const [a, b] = [await instance(t, { perClient: 2, overall: 3 }), await instance(t, { perClient: 2, overall: 3 })]
  t.equal((await login(a, 'nobody@example.com', 'x', '10.5.0.1')).statusCode, 401)
  t.equal((await login(b, 'nobody@example.com', 'x', '10.5.0.1')).statusCode, 401)
  const perClient = await login(a, 'nobody@example.com', 'x', '10.5.0.1')
  t.equal(perClient.statusCode, 429)
  t.equal(perClient.json().code, 'TOO_MANY_REQUESTS')
  t.equal((await login(b, 'nobody@example.com', 'x', '10.5.0.2')).statusCode, 401)
  t.equal((await login(a, 'nobody@example.com', 'x', '10.5.0.3')).json().code, 'TOO_MANY_REQUESTS', 'overall, across instances')
})
