// The session lifecycle on the domain objects with memory stores and an injected clock:
// no Fastify, no HTTP.
import t from 'tap'
import { AuthEvents, type RevocableJwtEvents } from '../../lib/domain/events.js'
import { Revocation } from '../../lib/domain/revocation.js'
import { Sessions } from '../../lib/domain/sessions.js'
import { hashToken } from '../../lib/domain/refresh-tokens.js'
import { MemoryRefreshTokenStore, MemoryRevocationStore } from '../../lib/stores/memory.js'
import type { RefreshTokenStore, RevocationStore, RotateInput, RotationFacts } from '../../lib/stores/types.js'
import { AuthStoreUnavailableError, RefreshTokenInvalidError, RefreshTokenReusedError } from '../../lib/errors.js'

const CLIENT = { userAgent: 'test', ip: '127.0.0.1' }
const GRACE = 10_000

function setUp (options: { maxSessions?: number, versions?: { get: (u: string) => Promise<number>, bump: (u: string) => Promise<number> }, store?: (revocationStore: RevocationStore, now: () => number) => RefreshTokenStore } = {}) {
  let now = 1_800_000_000_000
  const clock = { now: () => now, advance: (ms: number) => { now += ms } }
  const events = new AuthEvents((err) => { throw err })
  const seen: Array<{ event: keyof RevocableJwtEvents, payload: unknown }> = []
  for (const event of ['refreshTokenReused', 'sessionRevoked', 'tokenVersionBumped'] as const) {
    events.on(event, (payload: unknown) => seen.push({ event, payload }))
  }
  const revocationStore = new MemoryRevocationStore({ now: clock.now })
  const store = options.store?.(revocationStore, clock.now) ?? new MemoryRefreshTokenStore({ now: clock.now })
  const revocation = new Revocation({ store: revocationStore, storeTimeoutMs: 1000, events })
  revocation.checkDenylist()
  revocation.checkVersions(options.versions)
  const warnings: string[] = []
  const sessions = new Sessions({
    store,
    revocation,
    events,
    refreshTokenSecret: Buffer.alloc(32, 1),
    refreshTokenTtlMs: 7 * 86_400_000,
    refreshReuseGraceMs: GRACE,
    accessTokenTtlMs: 900_000,
    storeTimeoutMs: 1000,
    maxSessions: options.maxSessions ?? 100,
    keepRotated: 64,
    now: clock.now,
    warn: message => warnings.push(message)
  })
  return { clock, sessions, store, revocation, revocationStore, seen, warnings }
}

t.test('a login starts a session carrying the current version; its refresh token is stored only as a hash', async (t) => {
  const { sessions, store, revocation, clock } = setUp()
  await revocation.bumpVersion('ada')
  const started = await sessions.start('ada', CLIENT)
  t.equal(started.version, 1)
  t.match(started.refreshToken, /^YWRh\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/)
  t.equal((await store.find('ada', started.sessionId, hashToken(started.refreshToken), clock.now()))?.liveHash, hashToken(started.refreshToken))
  t.equal(await store.find('ada', started.sessionId, started.refreshToken, clock.now()), null, 'the token itself is not a key')
})

t.test('a version read before the credentials makes a login that raced a bump stale', async (t) => {
  const { sessions, revocation } = setUp()
  const readBefore = await revocation.getVersion('ada')
  await revocation.bumpVersion('ada')
  const started = await sessions.start('ada', CLIENT, readBefore)
  t.equal(started.version, 0)
  t.notOk(await revocation.isCurrentToken('ada', 'jti', started.sessionId, started.version), 'its access tokens are refused')
  await t.rejects(sessions.refresh(started.refreshToken, CLIENT), RefreshTokenInvalidError, 'and its refresh token')
})

t.test('refresh rotates: the child is answered and becomes the only live token', async (t) => {
  const { sessions, clock } = setUp()
  const started = await sessions.start('ada', CLIENT)
  clock.advance(1000)
  const first = await sessions.refresh(started.refreshToken, CLIENT)
  t.equal(first.outcome, 'rotated')
  t.not(first.refreshToken, started.refreshToken)
  t.equal(first.sessionId, started.sessionId)
  const second = await sessions.refresh(first.refreshToken, CLIENT)
  t.equal(second.outcome, 'rotated')
})

t.test('within the grace window the parent is answered with the live token, however far the chain moved', async (t) => {
  const { sessions, clock, seen } = setUp()
  const started = await sessions.start('ada', CLIENT)
  const child = await sessions.refresh(started.refreshToken, CLIENT)
  const grandchild = await sessions.refresh(child.refreshToken, CLIENT)
  clock.advance(GRACE)
  const late = await sessions.refresh(started.refreshToken, CLIENT)
  t.same({ outcome: late.outcome, token: late.refreshToken }, { outcome: 'grace', token: grandchild.refreshToken })
  clock.advance(GRACE)
  t.equal((await sessions.refresh(grandchild.refreshToken, CLIENT)).outcome, 'rotated', 'the token a late grace answer gave keeps working')
  t.same(seen, [], 'no alarm')
})

t.test('a rotated token presented after the grace window revokes the session and reports the reuse', async (t) => {
  const { sessions, clock, seen, revocation } = setUp()
  const started = await sessions.start('ada', CLIENT)
  const child = await sessions.refresh(started.refreshToken, CLIENT)
  clock.advance(GRACE + 1)
  await t.rejects(sessions.refresh(started.refreshToken, { userAgent: 'thief', ip: '10.9.9.9' }), RefreshTokenReusedError)
  t.same(seen.map(e => e.event), ['sessionRevoked', 'refreshTokenReused'])
  t.same(seen[1].payload, { userId: 'ada', sessionId: started.sessionId, userAgent: 'thief', ip: '10.9.9.9' })
  await t.rejects(sessions.refresh(child.refreshToken, CLIENT), RefreshTokenInvalidError, 'the live token is gone too')
  t.notOk(await revocation.isCurrentToken('ada', 'any', started.sessionId, 0), 'and its access tokens are revoked')
})

t.test('unknown, malformed and foreign tokens are invalid and change nothing', async (t) => {
  const { sessions } = setUp()
  const started = await sessions.start('ada', CLIENT)
  for (const token of ['', 'x', `${started.refreshToken}x`, started.refreshToken.replace(/^YWRh/, 'Ym9i')]) {
    await t.rejects(sessions.refresh(token, CLIENT), RefreshTokenInvalidError, JSON.stringify(token.slice(0, 12)))
  }
  t.equal((await sessions.refresh(started.refreshToken, CLIENT)).outcome, 'rotated')
})

t.test('a session older than the user\'s version is revoked at its next refresh', async (t) => {
  const { sessions, revocation, seen } = setUp()
  const started = await sessions.start('ada', CLIENT)
  await revocation.bumpVersion('ada')
  await t.rejects(sessions.refresh(started.refreshToken, CLIENT), RefreshTokenInvalidError)
  t.match(seen, [{ event: 'tokenVersionBumped' }, { event: 'sessionRevoked', payload: { reason: 'stale-version' } }])
})

t.test('a failing version read leaves the token unrotated: a late retry is not reuse', async (t) => {
  const { sessions, clock, revocationStore } = setUp()
  const started = await sessions.start('ada', CLIENT)
  const read = revocationStore.getTokenVersion.bind(revocationStore)
  revocationStore.getTokenVersion = async () => { throw new Error('down') }
  await t.rejects(sessions.refresh(started.refreshToken, CLIENT), AuthStoreUnavailableError)
  revocationStore.getTokenVersion = read
  clock.advance(60_000)
  t.equal((await sessions.refresh(started.refreshToken, CLIENT)).outcome, 'rotated')
})

t.test('prepare runs only for a stored token, before the rotation; its failure leaves the token unrotated', async (t) => {
  const { sessions, clock } = setUp()
  const started = await sessions.start('ada', CLIENT)
  const asked: string[] = []
  const prepare = async (userId: string): Promise<string> => { asked.push(userId); return `claims of ${userId}` }
  await t.rejects(sessions.refresh(started.refreshToken.replace(/\.[^.]+$/, `.${'A'.repeat(43)}`), CLIENT, prepare), RefreshTokenInvalidError)
  t.same(asked, [], 'not for a token that is not stored')
  await t.rejects(sessions.refresh(started.refreshToken, CLIENT, async () => { throw new Error('user table down') }), AuthStoreUnavailableError)
  clock.advance(60_000)
  const refreshed = await sessions.refresh(started.refreshToken, CLIENT, prepare)
  t.same({ outcome: refreshed.outcome, prepared: refreshed.prepared }, { outcome: 'rotated', prepared: 'claims of ada' })
  t.same(asked, ['ada'])
})

t.test('versions kept by the app are read only for a stored token', async (t) => {
  const asked: string[] = []
  const versions = { get: async (userId: string) => { asked.push(userId); return 0 }, bump: async () => 1 }
  const { sessions } = setUp({ versions })
  const started = await sessions.start('ada', CLIENT)
  asked.length = 0
  await t.rejects(sessions.refresh(started.refreshToken.replace(/^YWRh/, 'Ym9i'), CLIENT), RefreshTokenInvalidError)
  t.same(asked, [], 'no lookup for an id taken from an unknown cookie')
  await sessions.refresh(started.refreshToken, CLIENT)
  t.same(asked, ['ada'])
})

t.test('a login beyond the limit ends the least recently used session, refresh and access tokens alike', async (t) => {
  const { sessions, clock, revocation, seen } = setUp({ maxSessions: 2 })
  const first = await sessions.start('ada', CLIENT)
  clock.advance(1)
  const second = await sessions.start('ada', CLIENT)
  clock.advance(1)
  const refreshedFirst = await sessions.refresh(first.refreshToken, CLIENT)
  clock.advance(1)
  await sessions.start('ada', CLIENT)
  t.match(seen, [{ event: 'sessionRevoked', payload: { sessionId: second.sessionId, reason: 'evicted' } }])
  await t.rejects(sessions.refresh(second.refreshToken, CLIENT), RefreshTokenInvalidError)
  t.notOk(await revocation.isCurrentToken('ada', 'j', second.sessionId, 0), 'its access tokens are refused')
  t.equal((await sessions.refresh(refreshedFirst.refreshToken, CLIENT)).outcome, 'rotated', 'the recently used one lives on')
  t.equal((await sessions.list('ada')).length, 2)
})

t.test('revoking a session the user does not have writes nothing', async (t) => {
  const { sessions, revocationStore } = setUp()
  const mine = await sessions.start('ada', CLIENT)
  const theirs = await sessions.start('bob', CLIENT)
  t.equal(await sessions.revokeOwn('ada', theirs.sessionId), false)
  t.equal(await sessions.revokeOwn('ada', 'no-such-session'), false)
  t.equal(revocationStore.size, 0, 'no revocation was stored')
  t.equal((await sessions.refresh(theirs.refreshToken, CLIENT)).outcome, 'rotated', 'bob\'s session lives')
  t.equal(await sessions.revokeOwn('ada', mine.sessionId), true)
  t.equal(revocationStore.size, 1)
})

t.test('logout revokes the access token in hand and its session; other sessions live', async (t) => {
  const { sessions, revocation, clock } = setUp()
  const phone = await sessions.start('ada', CLIENT)
  const laptop = await sessions.start('ada', CLIENT)
  await sessions.logout('ada', phone.sessionId, 'jti-1', clock.now() + 60_000)
  t.notOk(await revocation.isCurrentToken('ada', 'jti-1', 'elsewhere', 0))
  t.notOk(await revocation.isCurrentToken('ada', 'jti-2', phone.sessionId, 0))
  await t.rejects(sessions.refresh(phone.refreshToken, CLIENT), RefreshTokenInvalidError)
  t.equal((await sessions.refresh(laptop.refreshToken, CLIENT)).outcome, 'rotated')
})

t.test('ending all sessions bumps the version and deletes every session', async (t) => {
  const { sessions, revocation } = setUp()
  const a = await sessions.start('ada', CLIENT)
  await sessions.start('ada', CLIENT)
  t.equal(await sessions.endAll('ada'), 2)
  t.equal(await revocation.getVersion('ada'), 1)
  t.same(await sessions.list('ada'), [])
  await t.rejects(sessions.refresh(a.refreshToken, CLIENT), RefreshTokenInvalidError)
})

t.test('a rotated token whose stored child another key derived is refused with a warning, and the session lives', async (t) => {
  const { sessions, store, clock, warnings } = setUp()
  const started = await sessions.start('ada', CLIENT)
  // Another instance, with another refreshTokenSecret, rotated it.
  await store.rotate({ userId: 'ada', sessionId: started.sessionId, hash: hashToken(started.refreshToken), childHash: 'foreign-child', now: clock.now(), childExpiresAt: clock.now() + 1e9, userAgent: null, ip: null, keepRotated: 64 })
  await t.rejects(sessions.refresh(started.refreshToken, CLIENT), RefreshTokenInvalidError)
  t.match(warnings, [/refreshTokenSecret/])
  t.equal((await sessions.list('ada')).length, 1)
})

/** A memory store that claims to read the versions of `of`, and reports `reported` as the current one. */
function claimingVersions (of: RevocationStore, now: () => number, reported: number): RefreshTokenStore {
  const store = new MemoryRefreshTokenStore({ now })
  const rotate = store.rotate.bind(store)
  return Object.assign(store, {
    readsTokenVersions: true,
    tokenVersionsOf: of,
    rotate: async (input: RotateInput): Promise<RotationFacts | null> => {
      const facts = await rotate(input)
      return facts === null ? null : { ...facts, currentVersion: reported }
    }
  })
}

t.test('a refresh store reading the versions of another revocation store is not trusted with them', async (t) => {
  const { sessions, revocation } = setUp({ store: (_revocationStore, now) => claimingVersions(new MemoryRevocationStore(), now, 0) })
  const started = await sessions.start('ada', CLIENT)
  await revocation.bumpVersion('ada')
  await t.rejects(sessions.refresh(started.refreshToken, CLIENT), RefreshTokenInvalidError, 'the app\'s revocation store has the version: the session is stale')
})

t.test('a refresh store reading the versions of the app\'s revocation store answers them in its own step', async (t) => {
  const { sessions, revocation } = setUp({ store: (revocationStore, now) => claimingVersions(revocationStore, now, 0) })
  const started = await sessions.start('ada', CLIENT, 0)
  await revocation.bumpVersion('ada')
  const refreshed = await sessions.refresh(started.refreshToken, CLIENT)
  t.equal(refreshed.version, 0, 'the version the store reported was used: no read of its own')
})
