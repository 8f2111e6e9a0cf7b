/**
 * THE refresh-token rotation policy: the one place that decides, from what a store
 * found (and did), whether a presented refresh token is answered, refused, or taken as
 * proof of theft. Stores report facts; nothing else in the package decides this.
 *
 * | what the store found                                           | decision                         |
 * |----------------------------------------------------------------|----------------------------------|
 * | nothing (unknown, expired, deleted, another user's)            | refuse: `unknown`                |
 * | rotated before, longer ago than the grace window               | revoke the session: `reuse`      |
 * | session older than the user's token version                    | revoke the session: `stale-version` |
 * | rotated before, within grace, its stored child is not ours     | refuse: `child-mismatch`         |
 * | rotated before, within grace                                   | answer the session's live token (`grace`), found by deriving forward; refuse `no-live-descendant` when it is not within reach |
 * | live, and this call rotated it                                 | answer its child (`rotated`)     |
 * | live, not rotated yet (a read before rotating)                 | go on and `rotate`               |
 */
import type { RotationFacts, TokenFacts } from '../stores/types.js'

export type RotationDecision =
  /** Answer with `token`: the presented token's child, or within grace the session's live descendant. */
  | { action: 'issue', outcome: 'rotated' | 'grace', token: string }
  /** The presented token is live and the version current: rotate it now (only from facts read before rotating). */
  | { action: 'rotate' }
  /** Refuse without touching the session. */
  | { action: 'refuse', reason: 'unknown' | 'child-mismatch' | 'no-live-descendant' }
  /** Refuse and revoke the whole session. */
  | { action: 'revoke', reason: 'reuse' | 'stale-version' }

export interface RotationContext {
  /** The presented refresh token. */
  presented: string
  /** Current time, ms since the epoch. */
  now: number
  /** How long after its rotation a token may be presented again and still be answered, ms. */
  graceMs: number
  /** The user's current token version. */
  currentVersion: number
  /** Rotated tokens a session keeps: the farthest a live descendant can be. */
  keepRotated: number
  /** The child a token rotates into (deterministic). */
  derive: (token: string) => string
  /** The stored form of a token. */
  hash: (token: string) => string
}

/**
 * Decide what to do with a presented refresh token. `facts` come from the store's
 * `rotate` (with `rotated`) or `find` (without: nothing was changed yet).
 */
export function decideRotation (facts: TokenFacts | RotationFacts | null, context: RotationContext): RotationDecision {
  if (facts === null) return { action: 'refuse', reason: 'unknown' }
  const stale = facts.session.version !== context.currentVersion
  if (facts.rotatedAt === null) {
    if (stale) return { action: 'revoke', reason: 'stale-version' }
    if ((facts as Partial<RotationFacts>).rotated === true) {
      return { action: 'issue', outcome: 'rotated', token: context.derive(context.presented) }
    }
    return { action: 'rotate' }
  }
  // Rotated before. After the window, only a copy of the token can be presenting it.
  if (context.now - facts.rotatedAt > context.graceMs) return { action: 'revoke', reason: 'reuse' }
  if (stale) return { action: 'revoke', reason: 'stale-version' }
  const child = context.derive(context.presented)
  // Another key derived the stored child: instances disagree on refreshTokenSecret.
  if (context.hash(child) !== facts.childHash) return { action: 'refuse', reason: 'child-mismatch' }
  // Two tabs refreshing at once, or a client retrying: answer with the live token, never
  // with a child that has already rotated further (its next use would look like theft).
  const live = liveDescendant(child, facts.liveHash, context)
  if (live === null) return { action: 'refuse', reason: 'no-live-descendant' }
  return { action: 'issue', outcome: 'grace', token: live }
}

/** Walk the rotation chain forward from `child` to the token whose hash is `liveHash`; null when it is not within `keepRotated` steps. */
function liveDescendant (child: string, liveHash: string, context: RotationContext): string | null {
  let token = child
  for (let step = 0; step <= context.keepRotated; step++) {
    if (context.hash(token) === liveHash) return token
    token = context.derive(token)
  }
  return null
}
