import t from 'tap'
import { MemoryRefreshTokenStore, MemoryRevocationStore } from '../../lib/stores/memory.js'
import { makeSession, refreshTokenStoreContract, revocationStoreContract, type ContractClock } from '../../lib/testing/contract.js'
import { declareWith } from './tap-contract.js'

function fakeClock (): ContractClock {
  let now = 1_800_000_000_000
  return {
    now: () => now,
    advance: async (ms) => { now += ms }
  }
}

t.test('MemoryRevocationStore passes the store contract', async (t) => {
  revocationStoreContract(declareWith(t), async () => {
    const clock = fakeClock()
    const store = new MemoryRevocationStore({ now: clock.now })
    return { store, clock, close: () => store.close() }
  })
})

t.test('MemoryRefreshTokenStore passes the store contract', async (t) => {
  refreshTokenStoreContract(declareWith(t), async () => {
    const clock = fakeClock()
    const store = new MemoryRefreshTokenStore({ now: clock.now })
    return { store, clock, close: () => store.close() }
  })
})

t.test('the revoked set shrinks once the revoked tokens have expired', async (t) => {
  const clock = fakeClock()
  const store = new MemoryRevocationStore({ now: clock.now, sweepInterval: 60_000 })
  for (let i = 0; i < 1000; i++) await store.revokeToken('u', `jti-${i}`, clock.now() + 15 * 60_000)
  await store.revokeSession('u', 'sid-long', clock.now() + 60 * 60_000)
  t.equal(store.size, 1001)
  await clock.advance(16 * 60_000)
  // The next write sweeps: the sweep interval has passed.
  await store.revokeToken('u', 'jti-new', clock.now() + 15 * 60_000)
  t.equal(store.size, 2, 'only the live session revocation and the new token remain')
  t.same(await store.check('u', 'jti-1', 'sid-long'), { tokenRevoked: false, sessionRevoked: true, version: 0 })
})

t.test('expired sessions are swept from memory', async (t) => {
  const clock = fakeClock()
  const store = new MemoryRefreshTokenStore({ now: clock.now, sweepInterval: 1000 })
  const short = makeSession(clock.now(), { expiresAt: clock.now() + 5000 })
  await store.create({ session: short, tokenHash: 'a', now: clock.now(), maxSessions: 10 })
  await store.create({ session: makeSession(clock.now()), tokenHash: 'b', now: clock.now(), maxSessions: 10 })
  t.equal(store.size, 2)
  await clock.advance(6000)
  await store.create({ session: makeSession(clock.now()), tokenHash: 'c', now: clock.now(), maxSessions: 10 })
  t.equal(store.size, 2, 'the expired session was dropped by the sweep')
  t.same(await store.listSessions(short.userId, clock.now()), [])
  t.equal(await store.deleteSession(short.userId, short.sessionId), false, 'its session is gone')
})

t.test('memory store options are validated', async (t) => {
  t.throws(() => new MemoryRevocationStore({ now: 5 as unknown as () => number }), { message: 'MemoryRevocationStore: now must be a function' })
  t.throws(() => new MemoryRefreshTokenStore({ sweepInterval: -1 }), { message: 'MemoryRefreshTokenStore: sweepInterval must be a non-negative number of ms' })
})
