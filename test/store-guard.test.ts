import t from 'tap'
import { AuthStoreUnavailableError } from '../lib/errors.js'
import { guardPromise, guardStore } from '../lib/domain/store-guard.js'
import { MemoryRefreshTokenStore, MemoryRevocationStore } from '../lib/stores/memory.js'
import { build, registerAndLogin } from './helper.js'

// These tests wait for the guard's own deadline: its timer is what is under test, so
// there is no clock to inject; the timeouts are kept to a few milliseconds.
const SHORT_TIMEOUT_MS = 20

function hanging<T> (): Promise<T> {
  return new Promise<T>(() => {})
}

t.test('a resolved store call passes its value through', async (t) => {
  t.equal(await guardStore(async () => 42, 1000), 42)
})

t.test('a rejected or throwing store call becomes AUTH_STORE_UNAVAILABLE with the original as cause', async (t) => {
  const original = new Error('ECONNREFUSED')
  for (const [name, operation] of [
    ['rejects', () => Promise.reject(original)],
    ['throws', () => { throw original }]
  ] as const) {
    const err = await guardStore(operation, 1000).catch((err: unknown) => err) as Error & { code: string, statusCode: number }
    t.ok(err instanceof AuthStoreUnavailableError, name)
    t.equal(err.code, 'AUTH_STORE_UNAVAILABLE', name)
    t.equal(err.statusCode, 503, name)
    t.equal(err.cause, original, `${name}: cause kept`)
  }
  const already = new AuthStoreUnavailableError()
  t.equal(await guardStore(() => Promise.reject(already), 1000).catch((err: unknown) => err), already, 'not wrapped twice')
})

t.test('a hanging store call times out with AUTH_STORE_UNAVAILABLE, no sooner than its deadline', async (t) => {
  const started = performance.now()
  const err = await guardPromise(hanging(), SHORT_TIMEOUT_MS).catch((err: unknown) => err) as Error
  t.ok(err instanceof AuthStoreUnavailableError)
  t.match((err.cause as Error).message, /timed out after 20 ms/)
  t.ok(performance.now() - started >= SHORT_TIMEOUT_MS - 1, 'not before the deadline')
})

t.test('calls in flight together each settle on their own; only the hanging ones time out', async (t) => {
  let settleMiddle: (value: string) => void = () => {}
  let settleLast: (value: string) => void = () => {}
  const first = guardPromise(hanging<string>(), SHORT_TIMEOUT_MS)
  const middle = guardPromise(new Promise<string>(resolve => { settleMiddle = resolve }), SHORT_TIMEOUT_MS)
  const last = guardPromise(new Promise<string>(resolve => { settleLast = resolve }), SHORT_TIMEOUT_MS)
  const tail = guardPromise(hanging<string>(), SHORT_TIMEOUT_MS)
  settleLast('last')
  settleMiddle('middle')
  const results = await Promise.allSettled([first, middle, last, tail])
  t.same(results.map(r => r.status), ['rejected', 'fulfilled', 'fulfilled', 'rejected'])
  t.same(results.map(r => r.status === 'fulfilled' ? r.value : (r.reason as Error).constructor === AuthStoreUnavailableError), [true, 'middle', 'last', true])

  // The list emptied and filled again: a new call still gets its deadline.
  const again = await guardPromise(hanging(), SHORT_TIMEOUT_MS).catch((err: unknown) => err)
  t.ok(again instanceof AuthStoreUnavailableError, 'a later hanging call times out too')
  t.equal(await guardPromise(Promise.resolve('after'), SHORT_TIMEOUT_MS), 'after')
})

t.test('a store call that settles after its timeout changes nothing', async (t) => {
  let settle: (value: string) => void = () => {}
  const guarded = guardPromise(new Promise<string>(resolve => { settle = resolve }), SHORT_TIMEOUT_MS)
  const err = await guarded.catch((err: unknown) => err)
  t.ok(err instanceof AuthStoreUnavailableError)
  settle('late')
  t.equal(await guarded.catch((err: unknown) => err), err, 'still the timeout')
})

t.test('a revocation store whose check throws instead of rejecting answers 503', async (t) => {
  const revocationStore = new MemoryRevocationStore()
  const app = await build({ revocationStore, refreshTokenStore: new MemoryRefreshTokenStore() })
  t.teardown(() => app.close())
  const session = await registerAndLogin(app)
  revocationStore.check = () => { throw new Error('not connected') }
  const res = await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
})

t.test('a custom store that answers with a plain value instead of a promise still works', async (t) => {
  t.equal(await guardStore((() => 7) as unknown as () => Promise<number>, 1000), 7)
  t.equal(await guardPromise(8 as unknown as Promise<number>, 1000), 8)
})
