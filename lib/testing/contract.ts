/**
 * The store contract: one set of cases every adapter must pass unchanged, exported
 * (`fastify-revocable-jwt/testing`) so that a third-party adapter runs the same cases.
 * It uses `node:assert` and asks only for a way to declare a test, so it runs under
 * any runner:
 *
 * @example
 * import { test } from 'node:test'
 * import { refreshTokenStoreContract } from 'fastify-revocable-jwt/testing'
 * refreshTokenStoreContract(test, async () => {
 *   const store = new MyStore(...)
 *   return { store, clock: realClock(), close: () => store.close() }
 * })
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { RefreshTokenStore, RevocationStore, RotateInput, SessionRecord } from '../stores/types.js'

/** The clock a store sees. */
export interface ContractClock {
  now (): number
  /** Let `ms` pass for the store: a real wait for a server's own key expiry, or an injected clock moved forward. */
  advance (ms: number): Promise<void>
}

export interface StoreFixture<S> {
  store: S
  clock: ContractClock
  /** Tear down what the fixture made (keys, tables, connections). */
  close (): Promise<void>
}

export type StoreFactory<S> = () => Promise<StoreFixture<S>>

/** How the contract declares a case: `test` of node:test, or any runner's equivalent. */
export type DeclareTest = (name: string, fn: () => Promise<void>) => unknown

/** A clock that is the real time: for stores whose server expires keys on its own. */
export function realClock (): ContractClock {
  return { now: () => Date.now(), advance: ms => new Promise(resolve => setTimeout(resolve, ms)) }
}

const MINUTE = 60_000
const DAY = 86_400_000
/** Rotated tokens kept in the contract's cases (the package keeps 64). */
export const CONTRACT_KEEP_ROTATED = 64
const MAX_SESSIONS = 100

export function randomKey (): string {
  return randomBytes(16).toString('base64url')
}

/** A fresh session for a new user (unless `userId` is given) starting at `now`. */
export function makeSession (now: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    sessionId: randomKey(),
    userId: `user-${randomKey()}`,
    version: 0,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: now + 7 * DAY,
    userAgent: 'contract-test',
    ip: '127.0.0.1',
    ...overrides
  }
}

/** The rotation of the token `hash` of `session` at `now` into `childHash`. */
export function rotation (session: SessionRecord, hash: string, childHash: string, now: number, overrides: Partial<RotateInput> = {}): RotateInput {
  return {
    userId: session.userId,
    sessionId: session.sessionId,
    hash,
    childHash,
    now,
    childExpiresAt: now + 7 * DAY,
    userAgent: 'rotating-agent',
    ip: '10.0.0.2',
    keepRotated: CONTRACT_KEEP_ROTATED,
    ...overrides
  }
}

async function using<S> (factory: StoreFactory<S>, run: (fixture: StoreFixture<S>) => Promise<void>): Promise<void> {
  const fixture = await factory()
  try {
    await run(fixture)
  } finally {
    await fixture.close()
  }
}

/** Cases every RevocationStore adapter must pass. */
export function revocationStoreContract (test: DeclareTest, factory: StoreFactory<RevocationStore>): void {
  test('a fresh store revokes nothing and reports version 0', () => using(factory, async ({ store }) => {
    assert.deepEqual(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
    assert.equal(await store.getTokenVersion('u1'), 0)
  }))

  test('a revoked token id is reported for that token only', () => using(factory, async ({ store, clock }) => {
    await store.revokeToken('u1', 'jti-1', clock.now() + 15 * MINUTE)
    assert.deepEqual(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: true, sessionRevoked: false, version: 0 })
    assert.deepEqual(await store.check('u1', 'jti-2', 'sid-1'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
    assert.deepEqual(await store.check('u2', 'jti-1', 'sid-1'), { tokenRevoked: false, sessionRevoked: false, version: 0 }, 'another user is not affected')
  }))

  test('a revoked session is reported for every token of that session', () => using(factory, async ({ store, clock }) => {
    await store.revokeSession('u1', 'sid-1', clock.now() + 15 * MINUTE)
    assert.deepEqual(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: false, sessionRevoked: true, version: 0 })
    assert.deepEqual(await store.check('u1', 'jti-2', 'sid-1'), { tokenRevoked: false, sessionRevoked: true, version: 0 })
    assert.deepEqual(await store.check('u1', 'jti-3', 'sid-2'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  }))

  test('an id that is not asked about (null) is not reported', () => using(factory, async ({ store, clock }) => {
    await store.revokeToken('u1', 'jti-1', clock.now() + MINUTE)
    await store.revokeSession('u1', 'sid-1', clock.now() + MINUTE)
    await store.bumpTokenVersion('u1')
    assert.deepEqual(await store.check('u1', null, null), { tokenRevoked: false, sessionRevoked: false, version: 1 })
    assert.deepEqual(await store.check('u1', 'jti-1', null), { tokenRevoked: true, sessionRevoked: false, version: 1 })
    assert.deepEqual(await store.check('u1', null, 'sid-1'), { tokenRevoked: false, sessionRevoked: true, version: 1 })
  }))

  test('a revocation whose token has already expired is not kept', () => using(factory, async ({ store, clock }) => {
    await store.revokeToken('u1', 'jti-old', clock.now() - 1000)
    await store.revokeSession('u1', 'sid-old', clock.now() - 1000)
    assert.deepEqual(await store.check('u1', 'jti-old', 'sid-old'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  }))

  test('revocations end when the revoked tokens would have expired', () => using(factory, async ({ store, clock }) => {
    await store.revokeToken('u1', 'jti-1', clock.now() + 1500)
    await store.revokeSession('u1', 'sid-1', clock.now() + 1500)
    assert.deepEqual(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: true, sessionRevoked: true, version: 0 })
    await clock.advance(2000)
    assert.deepEqual(await store.check('u1', 'jti-1', 'sid-1'), { tokenRevoked: false, sessionRevoked: false, version: 0 })
  }))

  test('bumping a version increments it for that user only', () => using(factory, async ({ store }) => {
    assert.equal(await store.bumpTokenVersion('u1'), 1)
    assert.equal(await store.bumpTokenVersion('u1'), 2)
    assert.equal(await store.getTokenVersion('u1'), 2)
    assert.equal(await store.getTokenVersion('u2'), 0)
    assert.equal((await store.check('u1', 'j', 's')).version, 2)
    assert.equal((await store.check('u2', 'j', 's')).version, 0)
  }))

  test('concurrent bumps are never lost', () => using(factory, async ({ store }) => {
    const versions = await Promise.all(Array.from({ length: 20 }, () => store.bumpTokenVersion('u1')))
    assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1))
    assert.equal(await store.getTokenVersion('u1'), 20)
  }))

  test('user ids with special characters are kept apart', () => using(factory, async ({ store, clock }) => {
    await store.bumpTokenVersion('a:b{c}')
    await store.revokeToken('a:b{c}', 'j:1', clock.now() + MINUTE)
    assert.equal(await store.getTokenVersion('a:b'), 0)
    assert.equal(await store.getTokenVersion('a:b{c}\u00e9'), 0)
    assert.deepEqual(await store.check('a:b{c}', 'j:1', 's'), { tokenRevoked: true, sessionRevoked: false, version: 1 })
  }))
}

/** Cases every RefreshTokenStore adapter must pass. */
export function refreshTokenStoreContract (test: DeclareTest, factory: StoreFactory<RefreshTokenStore>): void {
  async function started (store: RefreshTokenStore, now: number, overrides: Partial<SessionRecord> = {}): Promise<{ session: SessionRecord, hash: string }> {
    const session = makeSession(now, overrides)
    const hash = randomKey()
    assert.deepEqual(await store.create({ session, tokenHash: hash, now, maxSessions: MAX_SESSIONS }), { evicted: [] })
    return { session, hash }
  }

  test('a new session\'s token is found live, with the session as stored', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    assert.deepEqual(await store.find(session.userId, session.sessionId, hash, now), { session, rotatedAt: null, childHash: null, liveHash: hash })
  }))

  test('rotating the live token stores its child as the live one and records the rotation', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    const facts = await store.rotate(rotation(session, hash, 'child-1', now + 1000))
    const rotatedSession = { ...session, lastUsedAt: now + 1000, expiresAt: now + 1000 + 7 * DAY, userAgent: 'rotating-agent', ip: '10.0.0.2' }
    assert.deepEqual(facts, { rotated: true, session: rotatedSession, rotatedAt: null, childHash: null, liveHash: 'child-1' })
    assert.deepEqual(await store.find(session.userId, session.sessionId, hash, now + 1000), { session: rotatedSession, rotatedAt: now + 1000, childHash: 'child-1', liveHash: 'child-1' })
    assert.deepEqual(await store.find(session.userId, session.sessionId, 'child-1', now + 1000), { session: rotatedSession, rotatedAt: null, childHash: null, liveHash: 'child-1' })
  }))

  test('a rotation without client details keeps the session\'s', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    const facts = await store.rotate(rotation(session, hash, 'child-1', now, { userAgent: null, ip: null }))
    assert.equal(facts?.session.userAgent, 'contract-test')
    assert.equal(facts?.session.ip, '127.0.0.1')
  }))

  test('a token rotated before is reported with its child and the live token, and changes nothing', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    await store.rotate(rotation(session, hash, 'child-1', now))
    await store.rotate(rotation(session, 'child-1', 'child-2', now + 1))
    // Offered another child: a rotated token is never rotated again, whatever is offered.
    const again = await store.rotate(rotation(session, hash, 'another-child', now + 2))
    assert.equal(again?.rotated, false)
    assert.equal(again?.rotatedAt, now)
    assert.equal(again?.childHash, 'child-1', 'the child stored at its rotation, not the one offered now')
    assert.equal(again?.liveHash, 'child-2', 'the session\'s live token, two generations on')
    assert.equal(again?.session.lastUsedAt, now + 1)
    assert.equal(await store.find(session.userId, session.sessionId, 'another-child', now + 2), null, 'the offered child was not stored')
    assert.equal((await store.find(session.userId, session.sessionId, 'child-2', now + 2))?.rotatedAt, null)
  }))

  test('an unknown token, or one named with another user or session, is not found and changes nothing', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    const other = await started(store, now, { userId: session.userId })
    assert.equal(await store.find(session.userId, session.sessionId, 'unknown', now), null)
    assert.equal(await store.rotate(rotation(session, 'unknown', 'x', now)), null)
    assert.equal(await store.rotate(rotation({ ...session, userId: 'someone-else' }, hash, 'x', now)), null)
    assert.equal(await store.rotate(rotation(other.session, hash, 'x', now)), null, 'a token of one session presented for another')
    assert.equal((await store.rotate(rotation(session, hash, 'child', now)))?.rotated, true, 'the failed attempts changed nothing')
  }))

  test('an expired session is not found, cannot be rotated and is not listed', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now, { expiresAt: now + MINUTE })
    assert.equal(await store.find(session.userId, session.sessionId, hash, now + MINUTE), null)
    assert.equal(await store.rotate(rotation(session, hash, 'child', now + MINUTE)), null)
    assert.deepEqual(await store.listSessions(session.userId, now + MINUTE), [])
  }))

  test('twenty concurrent rotations of one token rotate it exactly once', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.rotate(rotation(session, hash, 'child', now + i))))
    assert.equal(results.filter(r => r?.rotated === true).length, 1, 'one rotation wins')
    for (const result of results) {
      assert.equal(result?.liveHash, 'child')
      if (result?.rotated === false) assert.equal(result.childHash, 'child')
    }
    assert.equal((await store.listSessions(session.userId, now + 100)).length, 1)
  }))

  test('concurrent rotations offering different children never fork the session', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.rotate(rotation(session, hash, `fork-${i}`, now))))
    const winners = results.filter(r => r?.rotated === true)
    assert.equal(winners.length, 1)
    const live = winners[0]?.liveHash as string
    for (const result of results) assert.equal(result?.liveHash, live, 'every caller is told the same live token')
    let stored = 0
    for (let i = 0; i < 20; i++) {
      if (await store.find(session.userId, session.sessionId, `fork-${i}`, now + 1) !== null) stored++
    }
    assert.equal(stored, 1, 'only the winning child is a stored token')
  }))

  test(`a session keeps its live token and at most ${CONTRACT_KEEP_ROTATED} rotated ones`, () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    const hashes = [hash]
    for (let i = 1; i <= CONTRACT_KEEP_ROTATED + 10; i++) {
      const facts = await store.rotate(rotation(session, hashes[i - 1], `gen-${i}`, now + i))
      assert.equal(facts?.rotated, true, `rotation ${i}`)
      hashes.push(`gen-${i}`)
    }
    const at = now + CONTRACT_KEEP_ROTATED + 10
    for (let i = 0; i < 10; i++) assert.equal(await store.find(session.userId, session.sessionId, hashes[i], at), null, `generation ${i} is forgotten`)
    assert.equal((await store.find(session.userId, session.sessionId, hashes[10], at))?.childHash, hashes[11], 'the oldest kept is still known as rotated')
    assert.equal((await store.find(session.userId, session.sessionId, hashes.at(-1) as string, at))?.rotatedAt, null, 'the newest is live')
  }))

  test('listing shows each live session of the user, oldest first', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const laptop = await started(store, now, { userAgent: 'laptop' })
    const phone = await started(store, now + 1, { userId: laptop.session.userId, userAgent: 'phone', ip: null })
    await started(store, now, { userAgent: 'other user' })
    await store.rotate(rotation(laptop.session, laptop.hash, 'child', now + 5000))
    const sessions = await store.listSessions(laptop.session.userId, now + 6000)
    assert.deepEqual(sessions, [
      { ...laptop.session, lastUsedAt: now + 5000, expiresAt: now + 5000 + 7 * DAY, userAgent: 'rotating-agent', ip: '10.0.0.2' },
      phone.session
    ])
  }))

  test('deleting a session ends every token of it, and only for its own user', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session, hash } = await started(store, now)
    const sibling = await started(store, now + 1, { userId: session.userId })
    await store.rotate(rotation(session, hash, 'child', now))
    assert.equal(await store.deleteSession('someone-else', session.sessionId), false, 'another user cannot delete it')
    assert.equal((await store.listSessions(session.userId, now)).length, 2)
    assert.equal(await store.deleteSession(session.userId, session.sessionId), true)
    assert.equal(await store.deleteSession(session.userId, session.sessionId), false, 'already gone')
    assert.equal(await store.find(session.userId, session.sessionId, hash, now + 1), null, 'the rotated parent is gone')
    assert.equal(await store.rotate(rotation(session, 'child', 'grandchild', now + 1)), null, 'the live child is gone')
    assert.deepEqual((await store.listSessions(session.userId, now + 1)).map(s => s.sessionId), [sibling.session.sessionId])
  }))

  test('deleting a user ends all of that user\'s sessions and no one else\'s', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const a = await started(store, now)
    await started(store, now, { userId: a.session.userId })
    const other = await started(store, now)
    assert.equal(await store.deleteUser(a.session.userId), 2)
    assert.deepEqual(await store.listSessions(a.session.userId, now), [])
    assert.equal(await store.rotate(rotation(a.session, a.hash, 'child', now)), null)
    assert.equal((await store.listSessions(other.session.userId, now)).length, 1)
    assert.equal(await store.deleteUser(a.session.userId), 0)
  }))

  test('a session id already stored is refused', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const { session } = await started(store, now)
    await assert.rejects(store.create({ session: { ...session, userId: session.userId }, tokenHash: randomKey(), now, maxSessions: MAX_SESSIONS }))
    assert.equal((await store.listSessions(session.userId, now)).length, 1)
  }))

  test('a login beyond the session limit ends the least recently used sessions', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const first = await started(store, now)
    const userId = first.session.userId
    const second = await started(store, now + 1, { userId })
    const third = await started(store, now + 2, { userId })
    // The first session refreshes: the second is now the least recently used.
    await store.rotate(rotation(first.session, first.hash, 'first-child', now + 3))
    const fourth = makeSession(now + 4, { userId })
    assert.deepEqual(await store.create({ session: fourth, tokenHash: randomKey(), now: now + 4, maxSessions: 3 }), { evicted: [second.session.sessionId] })
    assert.equal(await store.find(userId, second.session.sessionId, second.hash, now + 4), null, 'the evicted session\'s token is gone')
    assert.deepEqual((await store.listSessions(userId, now + 4)).map(s => s.sessionId), [first.session.sessionId, third.session.sessionId, fourth.sessionId])
    const fifth = makeSession(now + 5, { userId })
    assert.deepEqual(await store.create({ session: fifth, tokenHash: randomKey(), now: now + 5, maxSessions: 2 }), { evicted: [third.session.sessionId, first.session.sessionId] }, 'a lower limit evicts as many as needed')
  }))

  test('expired sessions do not count against the limit', () => using(factory, async ({ store, clock }) => {
    const now = clock.now()
    const old = await started(store, now, { expiresAt: now + MINUTE })
    const fresh = makeSession(now + MINUTE, { userId: old.session.userId })
    assert.deepEqual(await store.create({ session: fresh, tokenHash: randomKey(), now: now + MINUTE, maxSessions: 1 }), { evicted: [] })
    assert.deepEqual((await store.listSessions(fresh.userId, now + MINUTE)).map(s => s.sessionId), [fresh.sessionId])
  }))
}
