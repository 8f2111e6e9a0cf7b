import t from 'tap'
import { Redis } from 'ioredis'
import { NearCachedRevocationStore } from '../../lib/stores/redis-near-cache.js'
import { RedisRevocationStore } from '../../lib/stores/redis.js'
import { randomKey, realClock, revocationStoreContract } from '../../lib/testing/contract.js'
import { RedisServer } from '../redis-server.js'
import { declareWith } from './tap-contract.js'

const server = await RedisServer.start()
t.teardown(() => server.close())
const client = new Redis(server.url)
t.teardown(() => client.quit())
const admin = new Redis(server.url)
t.teardown(() => admin.quit())

async function nearStore (options: Partial<ConstructorParameters<typeof NearCachedRevocationStore>[0]> = {}): Promise<NearCachedRevocationStore> {
  const store = new NearCachedRevocationStore({ client, keyPrefix: `near-${randomKey()}:`, ...options })
  await store.init()
  return store
}

/** Wait until `check` holds, asking again on every turn; fail after `ms`. */
async function until (what: string, check: () => Promise<boolean> | boolean, ms = 2000): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < ms) {
    if (await check()) return performance.now() - started
    await new Promise(resolve => setImmediate(resolve))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function mgetCalls (): Promise<number> {
  const info = await admin.info('commandstats')
  return Number(/cmdstat_mget:calls=(\d+)/.exec(info)?.[1] ?? 0)
}

t.test('NearCachedRevocationStore passes the store contract', async (t) => {
  revocationStoreContract(declareWith(t), async () => {
    const store = await nearStore()
    return { store, clock: realClock(), close: () => store.close() }
  })
})

t.test('once the link is proven, a repeated check is answered from memory: no command reaches Redis', async (t) => {
  const store = await nearStore()
  t.teardown(() => store.close())
  await until('the link to be proven', () => store.stats.enabled)
  await store.check('ada', 'j1', 's1')
  const before = await mgetCalls()
  for (let i = 0; i < 100; i++) t.equal((await store.check('ada', 'j1', 's1')).tokenRevoked, false)
  t.equal(await mgetCalls(), before, 'no MGET for 100 checks')
  t.ok(store.stats.hits >= 100)
})

t.test('a revocation written by another instance is refused as soon as its invalidation arrives', async (t) => {
  const keyPrefix = `near-${randomKey()}:`
  const store = await nearStore({ keyPrefix })
  t.teardown(() => store.close())
  const other = new RedisRevocationStore({ client: admin, keyPrefix })
  await until('the link to be proven', () => store.stats.enabled)
  t.same(await store.check('ada', 'j1', 's1'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  await other.revokeToken('ada', 'j1', Date.now() + 60_000)
  const ms = await until('the revocation to be seen', async () => (await store.check('ada', 'j1', 's1')).tokenRevoked)
  t.comment(`seen after ${ms.toFixed(2)} ms`)
  await other.revokeSession('ada', 's2', Date.now() + 60_000)
  await other.bumpTokenVersion('ada')
  await until('the session revocation and the bump to be seen', async () => {
    const state = await store.check('ada', 'j9', 's2')
    return state.sessionRevoked && state.version === 1
  })
})

t.test('its own writes are seen at once, before any invalidation', async (t) => {
  const store = await nearStore()
  t.teardown(() => store.close())
  await until('the link to be proven', () => store.stats.enabled)
  await store.check('ada', 'j1', 's1')
  await store.revokeToken('ada', 'j1', Date.now() + 60_000)
  t.equal((await store.check('ada', 'j1', 's1')).tokenRevoked, true)
  await store.bumpTokenVersion('ada')
  t.equal((await store.check('ada', 'j1', 's1')).version, 1)
})

t.test('a lost invalidation connection empties the cache; checks go to Redis until the link is proven again', async (t) => {
  const keyPrefix = `near-${randomKey()}:`
  const store = await nearStore({ keyPrefix })
  t.teardown(() => store.close())
  const other = new RedisRevocationStore({ client: admin, keyPrefix })
  await until('the link to be proven', () => store.stats.enabled)
  await store.check('ada', 'j1', 's1')
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await until('the cache to be dropped', () => !store.stats.enabled)
  // Written while this instance cannot hear invalidations: still seen, from Redis.
  await other.revokeToken('ada', 'j1', Date.now() + 60_000)
  t.equal((await store.check('ada', 'j1', 's1')).tokenRevoked, true)
  await until('the link to be proven again', () => store.stats.enabled)
  await store.check('ada', 'j2', 's1')
  const before = await mgetCalls()
  await store.check('ada', 'j2', 's1')
  t.equal(await mgetCalls(), before, 'answered from memory again')
})

t.test('a link that lags beyond maxLag empties the cache until it is proven in time again', async (t) => {
  const keyPrefix = `near-${randomKey()}:`
  const store = await nearStore({ keyPrefix, heartbeatInterval: 50, maxLag: 50 })
  t.teardown(() => store.close())
  await until('the link to be proven', () => store.stats.enabled)
  await store.check('ada', 'j1', 's1')
  const resets = store.stats.resets
  // Writes wait: the heartbeat's write cannot happen, so no proof comes in time.
  await admin.call('CLIENT', 'PAUSE', '400', 'WRITE')
  await until('the lag to be noticed', () => !store.stats.enabled)
  t.equal(store.stats.resets, resets + 1)
  await until('the link to be proven again', () => store.stats.enabled, 3000)
})

t.test('options are validated with messages that name the option', async (t) => {
  t.throws(() => new NearCachedRevocationStore({ client: {} as never }), { message: 'NearCachedRevocationStore: client must be a standalone ioredis Redis (a Cluster has no single invalidation link)' })
  t.throws(() => new NearCachedRevocationStore({ client, maxEntries: 0 }), { message: 'NearCachedRevocationStore: maxEntries must be a positive integer, got 0' })
  t.throws(() => new NearCachedRevocationStore({ client, maxLag: 1.5 }), { message: 'NearCachedRevocationStore: maxLag must be a positive integer, got 1.5' })
})
