// Two example processes with the near cache on one private Redis, under load: a logout on
// one instance is refused by the other, whose near cache held the token's keys, and no
// other session is touched. The delay from the logout's answer to the first refusal is
// reported, not judged: speed belongs to the benchmark, and a busy machine stretches it.
import t from 'tap'
import { RedisServer } from './redis-server.js'
import { startServerProcess, stopServerProcess, type ServerProcess } from './processes.js'
import { TEST_SECRET } from './helper.js'

const ROUNDS = 40
const PROBES = 6
const BACKGROUND = 10
const PASSWORD = 'correct horse battery'

const redis = await RedisServer.start()
t.teardown(() => redis.close())
const env = { JWT_SECRET: TEST_SECRET, REDIS_URL: redis.url, REDIS_NEAR_CACHE: 'true', COOKIE_SECURE: 'false' }
const [a, b] = await Promise.all([startServerProcess('example/server.ts', env), startServerProcess('example/server.ts', env)])
t.teardown(() => Promise.all([stopServerProcess(a), stopServerProcess(b)]))

async function post (server: ServerProcess, path: string, body?: unknown, token?: string): Promise<{ status: number, body: any }> {
  const res = await fetch(`${server.base}${path}`, {
    method: 'POST',
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token !== undefined && { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? null : JSON.parse(text) }
}

async function me (server: ServerProcess, token: string): Promise<number> {
  const res = await fetch(`${server.base}/me`, { headers: { authorization: `Bearer ${token}` } })
  await res.arrayBuffer()
  return res.status
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

t.test(`a logout on one instance is refused by the other, under load (${ROUNDS} logouts)`, async (t) => {
  const email = `near-${process.pid}@example.com`
  t.equal((await post(a, '/auth/register', { email, password: PASSWORD })).status, 201)
  const tokens: string[] = []
  for (let i = 0; i < ROUNDS + 1; i++) tokens.push((await post(i % 2 === 0 ? a : b, '/auth/login', { email, password: PASSWORD })).body.accessToken)
  const background = tokens.pop() as string
  // Every token checked once on b: its keys are now in b's near cache.
  for (const token of tokens) t.equal(await me(b, token), 200)

  const stop = { done: false }
  const load = Array.from({ length: BACKGROUND }, async () => {
    while (!stop.done) if (await me(b, background) !== 200) throw new Error('the background token was refused')
  })
  const delays: number[] = []
  for (const token of tokens) {
    let refusedAt = 0
    const probes = Array.from({ length: PROBES }, async () => {
      while (refusedAt === 0) {
        const status = await me(b, token)
        if (status === 401) refusedAt ||= performance.now()
        else if (status !== 200) throw new Error(`unexpected ${status}`)
      }
    })
    // Let the probes run into the cache for a moment, then log out on the other instance.
    for (let i = 0; i < 3; i++) await me(b, token)
    const logout = await post(a, '/auth/logout', undefined, token)
    const loggedOutAt = performance.now()
    t.equal(logout.status, 204)
    await Promise.all(probes)
    delays.push(Math.max(0, refusedAt - loggedOutAt))
  }
  stop.done = true
  await Promise.all(load)
  const p50 = percentile(delays, 0.5)
  const p99 = percentile(delays, 0.99)
  t.comment(`refused by the other instance after the logout answered: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${Math.max(...delays).toFixed(2)} ms (${ROUNDS} logouts, ${PROBES} probing and ${BACKGROUND} background connections)`)
  t.equal(delays.length, ROUNDS, 'every logged-out token was refused by the other instance')
  const after = await Promise.all(tokens.map(async (token) => await me(b, token)))
  t.same(after.filter((status) => status !== 401), [], 'and stays refused there')
  t.equal(await me(b, background), 200, 'the other sessions were never affected')
})
