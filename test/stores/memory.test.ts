import t from 'tap'
import { MAX_ROTATED_PER_SESSION, MemoryRefreshTokenStore, MemoryRevocationStore } from '../../lib/stores/memory.js'
import { makeRecord, refreshTokenStoreContract, revocationStoreContract, rotatedAncestorsBoundCase, type ContractClock } from './contract.js'

function fakeClock (): ContractClock {
  let now = 1_800_000_000_000
  return {
    now: () => now,
    advance: async (ms) => { now += ms }
  }
}

t.test('MemoryRevocationStore passes the store contract', async (t) => {
  revocationStoreContract(t, async () => {
    const clock = fakeClock()
    const store = new MemoryRevocationStore({ now: clock.now })
    return { store, clock, close: () => store.close() }
  })
})

t.test('MemoryRefreshTokenStore passes the store contract', async (t) => {
  refreshTokenStoreContract(t, async () => {
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

t.test('expired refresh tokens are swept from memory', async (t) => {
  const clock = fakeClock()
  const store = new MemoryRefreshTokenStore({ now: clock.now, sweepInterval: 1000 })
  const short = makeRecord(clock.now(), { expiresAt: clock.now() + 5000 })
  await store.create(short)
  await store.create(makeRecord(clock.now()))
  t.equal(store.size, 2)
  await clock.advance(6000)
  await store.create(makeRecord(clock.now()))
  t.equal(store.size, 2, 'the expired record was dropped by the sweep')
  t.same(await store.listSessions(short.userId, clock.now()), [])
  t.equal(await store.deleteSession(short.userId, short.sessionId), false, 'its session index is gone too')
})

t.test('memory store options are validated', async (t) => {
  t.throws(() => new MemoryRevocationStore({ now: 5 as unknown as () => number }), { message: 'MemoryRevocationStore: now must be a function' })
  t.throws(() => new MemoryRefreshTokenStore({ sweepInterval: -1 }), { message: 'MemoryRefreshTokenStore: sweepInterval must be a non-negative number of ms' })
})

t.test('MemoryRefreshTokenStore bounds the rotated tokens of a session', async (t) => {
  rotatedAncestorsBoundCase(t, async () => {
    const clock = fakeClock()
    const store = new MemoryRefreshTokenStore({ now: clock.now })
    return { store, clock, close: () => store.close() }
  }, MAX_ROTATED_PER_SESSION)
})
