// The memory revocation store's footprint: heap bytes per revoked jti, and proof that
// expired entries are reclaimed. Run through `npm run bench -- memory [count]`, which
// starts node with --expose-gc.
import { randomBytes } from 'node:crypto'
import { MemoryRevocationStore } from '../lib/stores/memory.js'

const DEFAULT_COUNT = 1_000_000
/** Revocations last as long as the token could: one default access-token lifetime. */
const ACCESS_TOKEN_TTL_MS = 15 * 60_000
const SWEEP_INTERVAL_MS = 60_000

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc: npm run bench -- memory')
const collect = gc

const count = Number(process.argv[2] ?? DEFAULT_COUNT)
if (!Number.isSafeInteger(count) || count <= 0) throw new TypeError(`count must be a positive integer, got ${process.argv[2]}`)

function heapUsed (): number {
  // Several passes: weak callbacks and finalizers free more on the second.
  for (let i = 0; i < 3; i++) collect()
  return process.memoryUsage().heapUsed
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`

let clock = Date.now()
const store = new MemoryRevocationStore({ now: () => clock, sweepInterval: SWEEP_INTERVAL_MS })

const before = heapUsed()
const expiresAt = clock + ACCESS_TOKEN_TTL_MS
const probe = randomBytes(16).toString('base64url')
await store.revokeToken('user-0', probe, expiresAt)
for (let i = 1; i < count; i++) {
  // A jti as the package mints them (128 bits, base64url), created here and dropped:
  // only the store's own copy (its key) stays alive.
  await store.revokeToken(`user-${i % 10_000}`, randomBytes(16).toString('base64url'), expiresAt)
}
const filled = heapUsed()
const perEntry = (filled - before) / count

// Revoked until its expiry, not after; then the sweep drops it.
clock = expiresAt - 1
const revokedBefore = (await store.check('user-0', probe, 'none')).tokenRevoked
clock = expiresAt + SWEEP_INTERVAL_MS
const revokedAfter = (await store.check('user-0', probe, 'none')).tokenRevoked
const sizeBeforeSweep = store.size
// The next write sweeps, because sweepInterval has passed since the last sweep.
await store.revokeToken('user-0', randomBytes(16).toString('base64url'), clock + ACCESS_TOKEN_TTL_MS)
const swept = heapUsed()

const lines = [
  `Node ${process.version}, MemoryRevocationStore, ${count.toLocaleString('en-US')} revoked jtis (22-character base64url ids, 15-minute expiry)`,
  '',
  '| | heapUsed | entries |',
  '|---|--:|--:|',
  `| empty store | ${mb(before)} | 0 |`,
  `| after ${count.toLocaleString('en-US')} revocations | ${mb(filled)} | ${sizeBeforeSweep.toLocaleString('en-US')} |`,
  `| after expiry + the next write's sweep | ${mb(swept)} | ${store.size.toLocaleString('en-US')} |`,
  '',
  `Bytes per revoked jti: ${perEntry.toFixed(0)}`,
  `Reclaimed after expiry: ${mb(filled - swept)} of ${mb(filled - before)} (${(100 * (filled - swept) / (filled - before)).toFixed(1)}%); ${store.size} entry left (the one revoked by the sweeping write)`,
  `A revoked jti checked 1 ms before its expiry: revoked=${revokedBefore}; after it: revoked=${revokedAfter}.`
]
process.stdout.write(`${lines.join('\n')}\n`)
if (sizeBeforeSweep !== count || store.size !== 1 || !revokedBefore || revokedAfter) {
  process.stderr.write('unexpected entry counts: the store did not hold or did not reclaim what it should\n')
  process.exitCode = 1
}
