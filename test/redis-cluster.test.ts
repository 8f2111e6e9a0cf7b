// The Redis stores on a real three-master Redis Cluster: the contract, the
// example's revocation flows, and one slot per user.
import t from 'tap'
import { Cluster } from 'ioredis'
import { RedisRefreshTokenStore, RedisRevocationStore, userKeyBase } from '../lib/stores/redis.js'
import { RedisCluster } from './redis-server.js'
import { makeSession, randomKey, realClock, refreshTokenStoreContract, revocationStoreContract } from '../lib/testing/contract.js'
import { declareWith } from './stores/tap-contract.js'
import { TestClock, bearer, build, refreshCookie, registerAndLogin } from './helper.js'

const cluster = await RedisCluster.start()
t.teardown(() => cluster.close())
const client = new Cluster(cluster.startupNodes)
t.teardown(() => client.quit())
await client.ping()

t.test('RedisRevocationStore passes the store contract on a Cluster', async (t) => {
  revocationStoreContract(declareWith(t), async () => {
    const store = new RedisRevocationStore({ client, keyPrefix: `c-${randomKey()}:` })
    return { store, clock: realClock(), close: () => store.close() }
  })
})

t.test('RedisRefreshTokenStore passes the store contract on a Cluster', async (t) => {
  refreshTokenStoreContract(declareWith(t), async () => {
    const store = new RedisRefreshTokenStore({ client, keyPrefix: `c-${randomKey()}:` })
    return { store, clock: realClock(), close: () => store.close() }
  })
})

t.test('every key of one user is in one slot, and users spread over the masters', async (t) => {
  const prefix = `spread-${randomKey()}:`
  const refresh = new RedisRefreshTokenStore({ client, keyPrefix: prefix })
  const revocation = new RedisRevocationStore({ client, keyPrefix: prefix })
  const users = Array.from({ length: 24 }, (_, i) => `user-${i}-{odd}`)
  const now = Date.now()
  for (const userId of users) {
    await refresh.create({ session: makeSession(now, { userId }), tokenHash: 'x', now, maxSessions: 100 })
    await revocation.revokeToken(userId, 'jti', now + 60_000)
    await revocation.bumpTokenVersion(userId)
  }
  const slotsPerUser = new Set<number>()
  for (const userId of users) {
    const base = userKeyBase(prefix, userId)
    const slots = new Set<number>()
    for (const suffix of ['ru', 'v', 't:jti', 's:sid', 'S:session']) slots.add(await client.cluster('KEYSLOT', `${base}${suffix}`) as number)
    t.equal(slots.size, 1, `${userId}: one slot`)
    slotsPerUser.add([...slots][0])
  }
  const masters = client.nodes('master')
  t.equal(masters.length, 3)
  let mastersWithKeys = 0
  for (const node of masters) {
    if ((await node.keys(`${prefix}*`)).length > 0) mastersWithKeys++
  }
  t.ok(mastersWithKeys >= 2, `keys of ${users.length} users live on ${mastersWithKeys} masters`)
})

t.test('the example\'s logout, logout-all and reuse detection work on a Cluster', async (t) => {
  const clock = new TestClock()
  const keyPrefix = `example-${randomKey()}:`
  const app = await build({
    now: clock.now,
    env: { COOKIE_SECURE: 'false' },
    revocationStore: new RedisRevocationStore({ client, keyPrefix, now: clock.now }),
    refreshTokenStore: new RedisRefreshTokenStore({ client, keyPrefix, now: clock.now })
  })
  t.teardown(() => app.close())

  // Logout ends this session only.
  const phone = await registerAndLogin(app)
  const laptop = await registerAndLogin(app, 'correct horse battery')
  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(phone.accessToken), cookies: { refresh_token: phone.refreshToken } })
  t.equal(out.statusCode, 204)
  const afterLogout = await app.inject({ url: '/me', headers: bearer(phone.accessToken) })
  t.equal(afterLogout.statusCode, 401)
  t.equal(afterLogout.json().code, 'TOKEN_REVOKED')
  const refreshAfterLogout = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: phone.refreshToken } })
  t.equal(refreshAfterLogout.statusCode, 401)
  t.equal(refreshAfterLogout.json().code, 'REFRESH_TOKEN_INVALID')
  t.equal((await app.inject({ url: '/me', headers: bearer(laptop.accessToken) })).statusCode, 200, 'another user is untouched')

  // Logout-all ends every session of the user.
  const second = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: laptop.email, password: 'correct horse battery' } })
  t.equal(second.statusCode, 200)
  const all = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(laptop.accessToken) })
  t.equal(all.statusCode, 204)
  for (const token of [laptop.accessToken, second.json().accessToken as string]) {
    const res = await app.inject({ url: '/me', headers: bearer(token) })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'TOKEN_REVOKED')
  }
  const refreshAfterAll = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookie(second) as string } })
  t.equal(refreshAfterAll.statusCode, 401)
  t.equal(refreshAfterAll.json().code, 'REFRESH_TOKEN_INVALID')

  // A rotated refresh token presented after the grace window revokes the session.
  const victim = await registerAndLogin(app)
  const rotated = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: victim.refreshToken } })
  t.equal(rotated.statusCode, 200)
  const newest = refreshCookie(rotated) as string
  clock.advance(11_000)
  const reused = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: victim.refreshToken } })
  t.equal(reused.statusCode, 401)
  t.equal(reused.json().code, 'REFRESH_TOKEN_REUSED')
  const newestAfter = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: newest } })
  t.equal(newestAfter.statusCode, 401, 'the newest token of the session is gone too')
  t.equal(newestAfter.json().code, 'REFRESH_TOKEN_INVALID')
  const access = await app.inject({ url: '/me', headers: bearer(rotated.json().accessToken) })
  t.equal(access.statusCode, 401)
  t.equal(access.json().code, 'TOKEN_REVOKED')
})
