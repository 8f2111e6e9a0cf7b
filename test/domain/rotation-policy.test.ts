// Every row of the rotation policy table (lib/domain/rotation-policy.ts), on the pure
// function: facts in, decision out. No store, no Fastify.
import t from 'tap'
import { decideRotation, type RotationContext } from '../../lib/domain/rotation-policy.js'
import { deriveChildToken, hashToken, mintRefreshToken } from '../../lib/domain/refresh-tokens.js'
import type { SessionRecord, TokenFacts } from '../../lib/stores/types.js'

const KEY = Buffer.alloc(32, 7)
const OTHER_KEY = Buffer.alloc(32, 8)
const NOW = 1_800_000_000_000
const GRACE = 10_000
const presented = mintRefreshToken('user-1', 'AAAAAAAAAAAAAAAAAAAAAA')
const derive = (token: string): string => deriveChildToken(token, KEY)
const child = derive(presented)
const grandchild = derive(child)

const session: SessionRecord = { sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', userId: 'user-1', version: 3, createdAt: NOW - 60_000, lastUsedAt: NOW, expiresAt: NOW + 1e9, userAgent: null, ip: null }

function context (overrides: Partial<RotationContext> = {}): RotationContext {
  return { presented, now: NOW, graceMs: GRACE, currentVersion: 3, keepRotated: 64, derive, hash: hashToken, ...overrides }
}

function rotatedBefore (rotatedAt: number, liveHash: string, childHash = hashToken(child)): TokenFacts {
  return { session, rotatedAt, childHash, liveHash }
}

t.test('nothing found: refused as unknown', async (t) => {
  t.same(decideRotation(null, context()), { action: 'refuse', reason: 'unknown' })
})

t.test('live and rotated by this call: its child is answered', async (t) => {
  t.same(decideRotation({ session, rotatedAt: null, childHash: null, liveHash: hashToken(child), rotated: true }, context()),
    { action: 'issue', outcome: 'rotated', token: child })
})

t.test('live, read before rotating: go on and rotate', async (t) => {
  t.same(decideRotation({ session, rotatedAt: null, childHash: null, liveHash: hashToken(presented) }, context()), { action: 'rotate' })
})

t.test('live but older than the user\'s version: the session is revoked, whether read or rotated', async (t) => {
  const facts: TokenFacts = { session, rotatedAt: null, childHash: null, liveHash: hashToken(presented) }
  t.same(decideRotation(facts, context({ currentVersion: 4 })), { action: 'revoke', reason: 'stale-version' })
  t.same(decideRotation({ ...facts, rotated: true }, context({ currentVersion: 4 })), { action: 'revoke', reason: 'stale-version' })
  t.same(decideRotation(facts, context({ currentVersion: 2 })), { action: 'revoke', reason: 'stale-version' }, 'a version that went backwards is not current either')
})

t.test('rotated before, within the grace window: the live token is answered', async (t) => {
  t.same(decideRotation(rotatedBefore(NOW - GRACE, hashToken(child)), context()), { action: 'issue', outcome: 'grace', token: child }, 'at the edge of the window')
})

t.test('rotated before, within grace, the child already rotated further: the live descendant, never the rotated child', async (t) => {
  t.same(decideRotation(rotatedBefore(NOW - 1, hashToken(grandchild)), context()), { action: 'issue', outcome: 'grace', token: grandchild })
  let live = child
  for (let i = 0; i < 64; i++) live = derive(live)
  t.same(decideRotation(rotatedBefore(NOW - 1, hashToken(live)), context()), { action: 'issue', outcome: 'grace', token: live }, 'as far as the session keeps rotated tokens')
  t.same(decideRotation(rotatedBefore(NOW - 1, hashToken(derive(live))), context()), { action: 'refuse', reason: 'no-live-descendant' }, 'and no further')
})

t.test('rotated before, within grace, the live token is not a descendant: refused', async (t) => {
  t.same(decideRotation(rotatedBefore(NOW - 1, hashToken('something else')), context()), { action: 'refuse', reason: 'no-live-descendant' })
})

t.test('rotated before, within grace, its stored child derived with another key: refused, not taken for theft', async (t) => {
  const foreignChild = deriveChildToken(presented, OTHER_KEY)
  t.same(decideRotation(rotatedBefore(NOW - 1, hashToken(foreignChild), hashToken(foreignChild)), context()), { action: 'refuse', reason: 'child-mismatch' })
})

t.test('rotated before, after the grace window: reuse, and the session is revoked', async (t) => {
  t.same(decideRotation(rotatedBefore(NOW - GRACE - 1, hashToken(child)), context()), { action: 'revoke', reason: 'reuse' })
  t.same(decideRotation(rotatedBefore(NOW - GRACE - 1, hashToken('x'), hashToken('y')), context()), { action: 'revoke', reason: 'reuse' }, 'whatever its child')
  t.same(decideRotation(rotatedBefore(NOW - GRACE - 1, hashToken(child)), context({ currentVersion: 9 })), { action: 'revoke', reason: 'reuse' }, 'reuse is reported before a stale version')
})

t.test('rotated before, within grace, but the session is stale: revoked as stale', async (t) => {
  t.same(decideRotation(rotatedBefore(NOW - 1, hashToken(child)), context({ currentVersion: 4 })), { action: 'revoke', reason: 'stale-version' })
})

t.test('a grace window of zero: any second presentation is reuse', async (t) => {
  t.same(decideRotation(rotatedBefore(NOW, hashToken(child)), context({ graceMs: 0 })), { action: 'issue', outcome: 'grace', token: child }, 'the same millisecond is still within it')
  t.same(decideRotation(rotatedBefore(NOW - 1, hashToken(child)), context({ graceMs: 0 })), { action: 'revoke', reason: 'reuse' })
})
