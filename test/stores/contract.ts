// The store contract: one set of cases that every adapter must pass unchanged.
// An adapter's test file calls these with a factory that gives a fresh, empty store.
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import type { RefreshTokenRecord, RefreshTokenStore, RevocationStore, RotateInput } from '../../types/index.js'

/** The clock a store sees. Memory stores get an injected clock; Redis keys expire in real time. */
export interface ContractClock {
  now (): number
  /** Let `ms` pass for the store (a real sleep for a server's own TTLs). */
  advance (ms: number): Promise<void>
}

export interface StoreFixture<S> {
  store: S
  clock: ContractClock
  /** Tear down what the fixture made (keys, databases, connections). */
  close (): Promise<void>
}

export type StoreFactory<S> = () => Promise<StoreFixture<S>>

const MINUTE = 60_000
const DAY = 86_400_000
const GRACE = 10_000

export function randomKey (): string {
  return randomBytes(16).toString('base64url')
}

export function makeRecord (now: number, overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return {
    hash: randomKey(),
    sessionId: randomKey(),
    userId: `user-${randomKey()}`,
    version: 0,
    sessionCreatedAt: now,
    createdAt: now,
    expiresAt: now + 7 * DAY,
    lastUsedAt: now,
    userAgent: 'contract-test',
    ip: '127.0.0.1',
    rotatedAt: null,
    childHash: null,
    ...overrides
  }
}

/** The RotateInput for presenting `record` at `now`: a full-lifetime child `child-of-<hash>`. */
export function rotation (record: RefreshTokenRecord, now: number, overrides: Partial<RotateInput> = {}): RotateInput {
  return {
    userId: record.userId,
    hash: record.hash,
    childHash: `child-of-${record.hash}`,
    childExpiresAt: now + 7 * DAY,
    now,
    graceMs: GRACE,
    userAgent: 'rotating-agent',
    ip: '10.0.0.2',
    ...overrides
  }
}

async function withFixture<S> (t: Test, factory: StoreFactory<S>): Promise<StoreFixture<S>> {
  const fixture = await factory()
  t.teardown(() => fixture.close())
  return fixture
}

/** Cases every RevocationStore adapter must pass. */
export function revocationStoreContract (t: Test, factory: StoreFactory<RevocationStore>): void {
  t.test('a fresh store revokes nothing and reports version 0', async (t) => {
    const { store } = await withFixture(t, factory)
    t.same(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
    t.equal(await store.getTokenVersion('u1'), 0)
  })

  t.test('a revoked token id is reported for that token only', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    await store.revokeToken('u1', 'jti-1', clock.now() + 15 * MINUTE)
    t.same(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: true, sessionRevoked: false, version: 0 })
    t.same(await store.check('u1', 'jti-2', 'sid-1'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  })

  t.test('a revoked session is reported for every token of that session', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    await store.revokeSession('u1', 'sid-1', clock.now() + 15 * MINUTE)
    t.same(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: false, sessionRevoked: true, version: 0 })
    t.same(await store.check('u1', 'jti-2', 'sid-1'), { tokenRevoked: false, sessionRevoked: true, version: 0 })
    t.same(await store.check('u1', 'jti-3', 'sid-2'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  })

  t.test('a revocation whose token has already expired is not kept', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    await store.revokeToken('u1', 'jti-old', clock.now() - 1000)
    await store.revokeSession('u1', 'sid-old', clock.now() - 1000)
    t.same(await store.check('u1', 'jti-old', 'sid-old'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  })

  t.test('revocations end when the revoked tokens would have expired', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    await store.revokeToken('u1', 'jti-1', clock.now() + 1500)
    await store.revokeSession('u1', 'sid-1', clock.now() + 1500)
    t.same(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: true, sessionRevoked: true, version: 0 })
    await clock.advance(2000)
    t.same(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  })

  t.test('bumping a version increments it for that user only', async (t) => {
    const { store } = await withFixture(t, factory)
    t.equal(await store.bumpTokenVersion('u1'), 1)
    t.equal(await store.bumpTokenVersion('u1'), 2)
    t.equal(await store.getTokenVersion('u1'), 2)
    t.equal(await store.getTokenVersion('u2'), 0)
    t.equal((await store.check('u1', 'j', 's')).version, 2)
    t.equal((await store.check('u2', 'j', 's')).version, 0)
  })

  t.test('concurrent bumps are never lost', async (t) => {
    const { store } = await withFixture(t, factory)
    const versions = await Promise.all(Array.from({ length: 20 }, () => store.bumpTokenVersion('u1')))
    t.same([...versions].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1))
    t.equal(await store.getTokenVersion('u1'), 20)
  })

  t.test('user ids with special characters are kept apart', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    await store.bumpTokenVersion('a:b{c}')
    await store.revokeToken('a:b{c}', 'j:1', clock.now() + MINUTE)
    t.equal(await store.getTokenVersion('a:b'), 0)
    t.same(await store.check('a:b{c}', 'j:1', 's'), { tokenRevoked: true, sessionRevoked: false, version: 1 })
  })
}

/** Cases every RefreshTokenStore adapter must pass. */
export function refreshTokenStoreContract (t: Test, factory: StoreFactory<RefreshTokenStore>): void {
  t.test('the first rotation of a stored token stores its child', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now)
    await store.create(record)
    const first = await store.rotate(rotation(record, now + 1000))
    t.equal(first.outcome, 'rotated')
    if (first.outcome === 'not-found') return
    t.equal(first.record.sessionId, record.sessionId)
    t.equal(first.record.userId, record.userId)
    t.equal(first.record.version, record.version)
    const child = await store.rotate({ ...rotation(record, now + 2000), hash: `child-of-${record.hash}`, childHash: 'grandchild' })
    t.equal(child.outcome, 'rotated', 'the child is a live token of the same session')
    if (child.outcome === 'not-found') return
    t.equal(child.record.sessionId, record.sessionId)
    t.equal(child.record.sessionCreatedAt, record.sessionCreatedAt)
  })

  t.test('a rotated token presented within the grace window yields the same child', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now)
    await store.create(record)
    t.equal((await store.rotate(rotation(record, now))).outcome, 'rotated')
    const again = await store.rotate(rotation(record, now + GRACE))
    t.equal(again.outcome, 'grace')
    if (again.outcome === 'not-found') return
    t.equal(again.record.childHash, `child-of-${record.hash}`)
    t.equal((await store.listSessions(record.userId, now + GRACE)).length, 1, 'still one session')
  })

  t.test('a rotated token presented after the grace window is reported as reused', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now)
    await store.create(record)
    await store.rotate(rotation(record, now))
    const late = await store.rotate(rotation(record, now + GRACE + 1))
    t.equal(late.outcome, 'reused')
    if (late.outcome === 'not-found') return
    t.equal(late.record.sessionId, record.sessionId)
  })

  t.test('an unknown token, or a known one under another user, is not found', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now)
    await store.create(record)
    t.same(await store.rotate(rotation(makeRecord(now), now)), { outcome: 'not-found' })
    t.same(await store.rotate({ ...rotation(record, now), userId: 'someone-else' }), { outcome: 'not-found' })
    t.equal((await store.rotate(rotation(record, now))).outcome, 'rotated', 'the failed attempts changed nothing')
  })

  t.test('an expired token is not found and cannot be rotated', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now, { expiresAt: now + 60_000 })
    await store.create(record)
    t.same(await store.rotate(rotation(record, now + 60_000)), { outcome: 'not-found' })
    t.same(await store.listSessions(record.userId, now + 60_000), [])
  })

  t.test('twenty concurrent rotations of one token store exactly one child', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now)
    await store.create(record)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      store.rotate(rotation(record, now + i))))
    const outcomes = results.map(r => r.outcome)
    t.equal(outcomes.filter(o => o === 'rotated').length, 1, 'one rotation wins')
    t.equal(outcomes.filter(o => o === 'grace').length, 19, 'the others are grace retries')
    for (const result of results) {
      if (result.outcome !== 'not-found') t.equal(result.record.childHash, `child-of-${record.hash}`)
    }
    const sessions = await store.listSessions(record.userId, now + 100)
    t.equal(sessions.length, 1)
  })

  t.test('concurrent rotations offering different children never fork the session', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now)
    await store.create(record)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      store.rotate(rotation(record, now, { childHash: `fork-${i}` }))))
    t.equal(results.filter(r => r.outcome === 'rotated').length, 1)
    const children = new Set(results.map(r => r.outcome === 'not-found' ? null : r.record.childHash))
    t.equal(children.size, 1, 'every caller is told the same child')
    const [winner] = children
    let live = 0
    for (let i = 0; i < 20; i++) {
      const result = await store.rotate({ ...rotation(record, now + 1), hash: `fork-${i}`, childHash: `next-${i}` })
      if (result.outcome === 'rotated') {
        live++
        t.equal(`fork-${i}`, winner)
      }
    }
    t.equal(live, 1, 'only the winning child is a stored token')
  })

  t.test('listing sessions shows the newest token of each live session of the user', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const a = makeRecord(now, { userAgent: 'laptop' })
    const b = makeRecord(now + 1, { userId: a.userId, userAgent: 'phone' })
    const other = makeRecord(now, { userAgent: 'other user' })
    await store.create(a)
    await store.create(b)
    await store.create(other)
    await store.rotate(rotation(a, now + 5000))
    const sessions = await store.listSessions(a.userId, now + 6000)
    t.equal(sessions.length, 2)
    const laptop = sessions.find(s => s.sessionId === a.sessionId)
    const phone = sessions.find(s => s.sessionId === b.sessionId)
    t.ok(laptop && phone, 'both sessions listed')
    t.equal(laptop?.createdAt, a.sessionCreatedAt, 'createdAt is when the session began')
    t.equal(laptop?.lastUsedAt, now + 5000, 'lastUsedAt is the last refresh')
    t.equal(laptop?.userAgent, 'rotating-agent')
    t.equal(phone?.userAgent, 'phone')
    t.equal(phone?.userId, a.userId)
  })

  t.test('deleting a session ends every token of it, and only for its own user', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const record = makeRecord(now)
    const sibling = makeRecord(now, { userId: record.userId })
    await store.create(record)
    await store.create(sibling)
    await store.rotate(rotation(record, now))
    t.equal(await store.deleteSession('someone-else', record.sessionId), false, 'another user cannot delete it')
    t.equal((await store.listSessions(record.userId, now)).length, 2)
    t.equal(await store.deleteSession(record.userId, record.sessionId), true)
    t.equal(await store.deleteSession(record.userId, record.sessionId), false, 'already gone')
    t.same(await store.rotate(rotation(record, now + 1)), { outcome: 'not-found' }, 'the rotated parent is gone')
    t.same(await store.rotate({ ...rotation(record, now + 1), hash: `child-of-${record.hash}` }), { outcome: 'not-found' }, 'the child is gone')
    const left = await store.listSessions(record.userId, now)
    t.same(left.map(s => s.sessionId), [sibling.sessionId])
  })

  t.test('deleting a user ends all of that user\'s sessions and no one else\'s', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const a = makeRecord(now)
    const b = makeRecord(now, { userId: a.userId })
    const other = makeRecord(now)
    for (const r of [a, b, other]) await store.create(r)
    t.equal(await store.deleteUser(a.userId), 2)
    t.same(await store.listSessions(a.userId, now), [])
    t.same(await store.rotate(rotation(a, now)), { outcome: 'not-found' })
    t.equal((await store.listSessions(other.userId, now)).length, 1)
    t.equal(await store.deleteUser(a.userId), 0)
  })

  t.test('storing a hash twice is refused', async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const record = makeRecord(clock.now())
    await store.create(record)
    await t.rejects(store.create({ ...record, sessionId: 'another' }))
    t.same((await store.listSessions(record.userId, clock.now())).map(s => s.sessionId), [record.sessionId])
  })
}

/**
 * For adapters that bound the rotated tokens a session keeps (memory, Redis): a session
 * refreshed in a loop keeps `max` ancestors; an older one is forgotten (not found), the
 * recent ones are still detected as reused.
 */
export function rotatedAncestorsBoundCase (t: Test, factory: StoreFactory<RefreshTokenStore>, max: number): void {
  t.test(`a session keeps at most ${max} rotated tokens`, async (t) => {
    const { store, clock } = await withFixture(t, factory)
    const now = clock.now()
    const first = makeRecord(now)
    await store.create(first)
    const hashes = [first.hash]
    for (let i = 1; i <= max + 10; i++) {
      const parent = hashes[hashes.length - 1]
      const child = `gen-${i}-${first.hash}`
      const result = await store.rotate({ ...rotation(first, now + i), hash: parent, childHash: child })
      if (result.outcome !== 'rotated') { t.fail(`rotation ${i}: ${result.outcome}`); return }
      hashes.push(child)
    }
    const late = now + max + 10 + GRACE + 1
    t.same(await store.rotate({ ...rotation(first, late), hash: hashes[0] }), { outcome: 'not-found' }, 'the oldest ancestor is forgotten')
    t.same(await store.rotate({ ...rotation(first, late), hash: hashes[9] }), { outcome: 'not-found' }, 'and the ten after it')
    t.equal((await store.rotate({ ...rotation(first, late), hash: hashes[10] })).outcome, 'reused', 'the oldest kept ancestor is still detected as reused')
    const sessions = await store.listSessions(first.userId, late)
    t.equal(sessions.length, 1)
    t.equal(sessions[0].lastUsedAt, now + max + 10, 'the newest token is the live one')
  })
}
