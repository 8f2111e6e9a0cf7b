import t from 'tap'
import { Redis } from 'ioredis'
import { RedisRefreshTokenStore, RedisRevocationStore, userKeyBase } from '../../lib/stores/redis.js'
import { RedisServer } from '../redis-server.js'
import { makeRecord, randomKey, refreshTokenStoreContract, revocationStoreContract, rotatedAncestorsBoundCase, rotation, type ContractClock } from './contract.js'
import { MAX_ROTATED_PER_SESSION } from '../../lib/stores/memory.js'

const MINUTE = 60_000
const DAY = 86_400_000

const server = await RedisServer.start()
t.teardown(() => server.close())
const client = new Redis(server.url, { lazyConnect: false })
t.teardown(() => client.quit())

/**
 * Redis expires keys on its own clock, so the contract's `advance` really sleeps:
 * the only way to see a PX TTL run out on a real server.
 */
function realClock (): ContractClock {
  return {
    now: () => Date.now(),
    advance: (ms) => new Promise(resolve => setTimeout(resolve, ms))
  }
}

/** A fresh prefix per fixture: every case starts with an empty store on the shared server. */
function freshPrefix (): string {
  return `test-${randomKey()}:`
}

t.test('RedisRevocationStore passes the store contract', async (t) => {
  revocationStoreContract(t, async () => {
    const store = new RedisRevocationStore({ client, keyPrefix: freshPrefix() })
    return { store, clock: realClock(), close: () => store.close() }
  })
})

t.test('RedisRefreshTokenStore passes the store contract', async (t) => {
  refreshTokenStoreContract(t, async () => {
    const store = new RedisRefreshTokenStore({ client, keyPrefix: freshPrefix() })
    return { store, clock: realClock(), close: () => store.close() }
  })
})

t.test('RedisRefreshTokenStore bounds the rotated tokens of a session', async (t) => {
  rotatedAncestorsBoundCase(t, async () => {
    const store = new RedisRefreshTokenStore({ client, keyPrefix: freshPrefix() })
    return { store, clock: realClock(), close: () => store.close() }
  }, MAX_ROTATED_PER_SESSION)
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

t.test('refresh records and their indexes expire with the newest token', async (t) => {
  const prefix = freshPrefix()
  const store = new RedisRefreshTokenStore({ client, keyPrefix: prefix })
  const now = Date.now()
  const record = makeRecord(now, { expiresAt: now + 7 * DAY })
  await store.create(record)
  const base = userKeyBase(prefix, record.userId)
  const recordTtl = await client.pttl(`${base}r:${record.hash}`)
  t.ok(recordTtl > 7 * DAY - 2000 && recordTtl <= 7 * DAY, `record TTL ${recordTtl}`)
  t.same(await client.zrange(`${base}rs:${record.sessionId}`, 0, '-1', 'WITHSCORES'), [record.hash, String(record.expiresAt)])
  t.same(await client.zrange(`${base}ru`, 0, '-1', 'WITHSCORES'), [record.sessionId, String(record.expiresAt)])

  const later = now + DAY
  await store.rotate(rotation(record, later, { childHash: 'child', userAgent: null, ip: null }))
  t.same(await client.hgetall(`${base}r:child`), {
    hash: 'child',
    sessionId: record.sessionId,
    userId: record.userId,
    version: '0',
    sessionCreatedAt: String(now),
    createdAt: String(later),
    expiresAt: String(later + 7 * DAY),
    lastUsedAt: String(later),
    userAgent: 'contract-test',
    ip: '127.0.0.1'
  }, 'the child keeps the session\'s client info when the rotation brings none')
  const childTtl = await client.pttl(`${base}r:child`)
  t.ok(childTtl > 7 * DAY - 2000 && childTtl <= 7 * DAY, `child TTL ${childTtl} counts from the rotation`)
  t.equal(await client.hget(`${base}r:${record.hash}`, 'childHash'), 'child')
  t.ok(await client.pttl(`${base}r:${record.hash}`) <= 7 * DAY, 'the parent keeps its own expiry')
  for (const index of [`${base}rs:${record.sessionId}`, `${base}ru`]) {
    const ttl = await client.pttl(index)
    // The index's TTL follows its newest member, the child: its expiry less the rotation's `now`.
    t.ok(ttl > 7 * DAY - 2000 && ttl <= 7 * DAY, `${index} TTL ${ttl}`)
  }
  t.same(await client.zrange(`${base}ru`, 0, '-1', 'WITHSCORES'), [record.sessionId, String(later + 7 * DAY)], 'the session is scored by its newest token')
})

t.test('expired members are pruned from the indexes by the next write', async (t) => {
  const prefix = freshPrefix()
  const store = new RedisRefreshTokenStore({ client, keyPrefix: prefix })
  const now = Date.now()
  const old = makeRecord(now, { expiresAt: now + 1000 })
  await store.create(old)
  const base = userKeyBase(prefix, old.userId)
  t.equal(await client.zcard(`${base}ru`), 1)
  // Redis expires the record on its own clock: wait until it really has.
  await new Promise(resolve => setTimeout(resolve, 1100))
  t.equal(await client.exists(`${base}r:${old.hash}`, `${base}rs:${old.sessionId}`), 0, 'record and session index expired with the token')
  const fresh = makeRecord(Date.now(), { userId: old.userId })
  await store.create(fresh)
  t.same(await client.zrange(`${base}ru`, 0, '-1'), [fresh.sessionId], 'the expired session left the user index')
  t.equal(await store.deleteUser(old.userId), 1)
  t.same(await client.keys(`${prefix}*`), [], 'deleting the user leaves no key behind')
})

t.test('deleting a session removes its records and its index entries', async (t) => {
  const prefix = freshPrefix()
  const store = new RedisRefreshTokenStore({ client, keyPrefix: prefix })
  const now = Date.now()
  const record = makeRecord(now)
  const sibling = makeRecord(now, { userId: record.userId })
  await store.create(record)
  await store.create(sibling)
  await store.rotate(rotation(record, now, { childHash: 'c1', graceMs: 0, userAgent: 'ua', ip: '1.2.3.4' }))
  t.equal(await store.deleteSession(record.userId, record.sessionId), true)
  const base = userKeyBase(prefix, record.userId)
  t.same((await client.keys(`${prefix}*`)).sort(), [`${base}r:${sibling.hash}`, `${base}rs:${sibling.sessionId}`, `${base}ru`].sort())
  t.same(await client.zrange(`${base}ru`, 0, '-1'), [sibling.sessionId])
})

t.test('an ioredis keyPrefix on the client applies to the keys the scripts derive', async (t) => {
  const prefixed = new Redis(server.url, { keyPrefix: 'app:' })
  t.teardown(() => prefixed.quit())
  const prefix = freshPrefix()
  const store = new RedisRefreshTokenStore({ client: prefixed, keyPrefix: prefix })
  const now = Date.now()
  const record = makeRecord(now)
  await store.create(record)
  await store.rotate(rotation(record, now, { childHash: 'c1', graceMs: 0, userAgent: 'ua', ip: null }))
  const keys = await client.keys(`*${prefix}*`)
  t.equal(keys.length, 4, 'parent, child, session index, user index')
  t.ok(keys.every(k => k.startsWith(`app:${prefix}`)), 'every key carries the client prefix')
  t.equal((await store.listSessions(record.userId, now)).length, 1)
  t.equal(await store.deleteUser(record.userId), 1)
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
