import t from 'tap'
import { Redis } from 'ioredis'
import { RedisRefreshTokenStore, RedisRevocationStore, userKeyBase } from '../../lib/stores/redis.js'
import { makeSession, randomKey, realClock, refreshTokenStoreContract, revocationStoreContract, rotation } from '../../lib/testing/contract.js'
import { RedisServer } from '../redis-server.js'
import { declareWith } from './tap-contract.js'

const MINUTE = 60_000
const DAY = 86_400_000

const server = await RedisServer.start()
t.teardown(() => server.close())
const client = new Redis(server.url, { lazyConnect: false })
t.teardown(() => client.quit())

/** A fresh prefix per fixture: every case starts with an empty store on the private server. */
function freshPrefix (): string {
  return `test-${randomKey()}:`
}

// Redis expires keys on its own clock, so the contract's `advance` really waits.
t.test('RedisRevocationStore passes the store contract', async (t) => {
  revocationStoreContract(declareWith(t), async () => {
    const store = new RedisRevocationStore({ client, keyPrefix: freshPrefix() })
    return { store, clock: realClock(), close: () => store.close() }
  })
})

t.test('RedisRefreshTokenStore passes the store contract', async (t) => {
  refreshTokenStoreContract(declareWith(t), async () => {
    const store = new RedisRefreshTokenStore({ client, keyPrefix: freshPrefix() })
    return { store, clock: realClock(), close: () => store.close() }
  })
})

t.test('revoked ids are kept with a PX TTL equal to the time left on the token', async (t) => {
  const prefix = freshPrefix()
  const now = 1_800_000_000_000
  const store = new RedisRevocationStore({ client, keyPrefix: prefix, now: () => now })
  await store.revokeToken('u1', 'jti-1', now + 15 * MINUTE)
  await store.revokeSession('u1', 'sid-1', now + 5 * MINUTE)
  await store.revokeToken('u1', 'jti-old', now - 1)
  await store.bumpTokenVersion('u1')
  const base = userKeyBase(prefix, 'u1')
  t.equal(base, `${prefix}{dTE}:`, 'the user id is base64url inside the hash tag')
  const tokenTtl = await client.pttl(`${base}t:jti-1`)
  const sessionTtl = await client.pttl(`${base}s:sid-1`)
  t.ok(tokenTtl > 15 * MINUTE - 1000 && tokenTtl <= 15 * MINUTE, `token TTL ${tokenTtl}`)
  t.ok(sessionTtl > 5 * MINUTE - 1000 && sessionTtl <= 5 * MINUTE, `session TTL ${sessionTtl}`)
  t.equal(await client.exists(`${base}t:jti-old`), 0, 'no key for a token that has expired')
  t.equal(await client.pttl(`${base}v`), -1, 'the version is kept without a TTL')
  t.equal(await client.get(`${base}v`), '1')
})

t.test('a user id with braces cannot escape its hash tag', async (t) => {
  const base = userKeyBase('p:', 'a}{b')
  t.equal(base, `p:{${Buffer.from('a}{b').toString('base64url')}}:`)
  t.notMatch(base.slice(3, -2), /[{}]/)
})

t.test('a session is one hash that expires with its live token; the user index follows its newest session', async (t) => {
  const prefix = freshPrefix()
  const store = new RedisRefreshTokenStore({ client, keyPrefix: prefix })
  const now = Date.now()
  const session = makeSession(now, { userAgent: null })
  await store.create({ session, tokenHash: 'first', now, maxSessions: 100 })
  const base = userKeyBase(prefix, session.userId)
  const key = `${base}S:${session.sessionId}`
  t.ok(await client.pttl(key) > 7 * DAY - 2000, 'the session lives as long as its token')
  t.same(await client.zrange(`${base}ru`, 0, '-1', 'WITHSCORES'), [session.sessionId, String(session.expiresAt)])

  const later = now + DAY
  await store.rotate(rotation(session, 'first', 'child', later, { userAgent: null, ip: null }))
  t.same(await client.hgetall(key), {
    userId: session.userId,
    version: '0',
    createdAt: String(now),
    lastUsedAt: String(later),
    expiresAt: String(later + 7 * DAY),
    ip: '127.0.0.1',
    live: 'child',
    gen: '1',
    't:first': `0|${later}|child`,
    't:child': '1',
    'g:0': 'first',
    'g:1': 'child'
  }, 'no user agent is stored when neither the login nor the rotation brought one')
  const ttl = await client.pttl(key)
  t.ok(ttl > 7 * DAY - 2000 && ttl <= 7 * DAY, `the session TTL ${ttl} counts from the rotation's now`)
  t.same(await client.zrange(`${base}ru`, 0, '-1', 'WITHSCORES'), [session.sessionId, String(later + 7 * DAY)], 'the session is scored by its live token\'s expiry')
})

t.test('an expired session leaves the user index at the next write, and deleting the user leaves no key', async (t) => {
  const prefix = freshPrefix()
  const store = new RedisRefreshTokenStore({ client, keyPrefix: prefix })
  const now = Date.now()
  const old = makeSession(now, { expiresAt: now + 1000 })
  await store.create({ session: old, tokenHash: 'old', now, maxSessions: 100 })
  const base = userKeyBase(prefix, old.userId)
  // Redis expires the session on its own clock: wait until it really has.
  while (await client.exists(`${base}S:${old.sessionId}`) === 1) await new Promise(resolve => setTimeout(resolve, 50))
  const fresh = makeSession(Date.now(), { userId: old.userId })
  await store.create({ session: fresh, tokenHash: 'fresh', now: Date.now(), maxSessions: 100 })
  t.same(await client.zrange(`${base}ru`, 0, '-1'), [fresh.sessionId], 'the expired session left the user index')
  t.equal(await store.deleteUser(old.userId), 1)
  t.same(await client.keys(`${prefix}*`), [], 'deleting the user leaves no key behind')
})

t.test('an ioredis keyPrefix on the client applies to the keys the scripts derive', async (t) => {
  const prefixed = new Redis(server.url, { keyPrefix: 'app:' })
  t.teardown(() => prefixed.quit())
  const prefix = freshPrefix()
  const store = new RedisRefreshTokenStore({ client: prefixed, keyPrefix: prefix })
  const now = Date.now()
  const session = makeSession(now)
  const second = makeSession(now, { userId: session.userId })
  await store.create({ session, tokenHash: 'a', now, maxSessions: 100 })
  await store.create({ session: second, tokenHash: 'b', now, maxSessions: 1 })
  const keys = await client.keys(`*${prefix}*`)
  t.equal(keys.length, 2, 'the second session and the user index; the first was evicted')
  t.ok(keys.every(k => k.startsWith(`app:${prefix}`)), 'every key carries the client prefix')
  t.equal((await store.listSessions(session.userId, now)).length, 1)
  t.equal(await store.deleteUser(session.userId), 1)
  t.same(await client.keys(`*${prefix}*`), [])
})

t.test('store options are validated with messages that name the option', async (t) => {
  t.throws(() => new RedisRevocationStore({} as never), { message: 'RedisRevocationStore: client must be an ioredis Redis or Cluster instance' })
  t.throws(() => new RedisRefreshTokenStore({ client: {} as never }), { message: 'RedisRefreshTokenStore: client must be an ioredis Redis or Cluster instance' })
  t.throws(() => new RedisRevocationStore({ client, keyPrefix: 'a{b}' }), {
    message: 'RedisRevocationStore: keyPrefix must be a string without "{" or "}" (they would change the Redis Cluster hash slot)'
  })
  t.throws(() => new RedisRefreshTokenStore({ client, keyPrefix: 5 as never }), {
    message: 'RedisRefreshTokenStore: keyPrefix must be a string without "{" or "}" (they would change the Redis Cluster hash slot)'
  })
  t.throws(() => new RedisRevocationStore({ client, now: 'soon' as never }), { message: 'RedisRevocationStore: now must be a function' })
})

t.test('closing a store leaves the client it was given connected', async (t) => {
  const store = new RedisRevocationStore({ client })
  const refresh = new RedisRefreshTokenStore({ client })
  await store.close()
  await refresh.close()
  t.equal(client.status, 'ready')
  t.equal(await client.ping(), 'PONG')
})
