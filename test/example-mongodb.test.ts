import t from 'tap'
import { randomBytes } from 'node:crypto'
import { build as buildExample } from '../example/app.js'
import { withMongoRefreshTokens } from '../example/stores.js'
import { MemoryRevocationStore } from '../lib/index.js'
import { MongoRefreshTokenStore } from '../lib/stores/mongodb.js'
import { TEST_SECRET, TestClock, bearer, build, refreshCookie, registerAndLogin } from './helper.js'

// The example's MONGODB_URL wiring. Without a server only the wiring is checked (which
// store is chosen, what closes what, that a dead server stops the boot); the end-to-end
// flow needs MONGODB_URL and is reported skipped otherwise.

const MONGODB_URL = process.env.MONGODB_URL
// Nothing listens on port 1: connecting fails after the 100 ms server selection timeout.
const UNREACHABLE = 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100'

t.test('withMongoRefreshTokens replaces only the refresh-token store and closes it before the others', async (t) => {
  const revocationStore = new MemoryRevocationStore()
  const closed: string[] = []
  const selected = await withMongoRefreshTokens(UNREACHABLE, { revocationStore, close: async () => { closed.push('selected') } })
  t.ok(selected.refreshTokenStore instanceof MongoRefreshTokenStore)
  t.equal(selected.revocationStore, revocationStore, 'revocation stays where it was')
  const store = selected.refreshTokenStore as MongoRefreshTokenStore
  t.capture(store, 'close', async () => { closed.push('mongodb') })
  await selected.close?.()
  t.same(closed, ['mongodb', 'selected'])
})

t.test('the stores selected before are closed even when closing MongoDB fails', async (t) => {
  let closedSelected = false
  const selected = await withMongoRefreshTokens(UNREACHABLE, { close: async () => { closedSelected = true } })
  t.capture(selected.refreshTokenStore as MongoRefreshTokenStore, 'close', async () => { throw new Error('mongodb close failed') })
  await t.rejects(selected.close?.() as Promise<void>, { message: 'mongodb close failed' })
  t.ok(closedSelected)
})

t.test('with MONGODB_URL the example keeps refresh tokens in MongoDB and will not start without the server', async (t) => {
  const app = await buildExample({ env: { JWT_SECRET: TEST_SECRET, MONGODB_URL: UNREACHABLE } })
  t.teardown(() => app.close())
  t.ok(app.revocableJwt.refreshTokenStore instanceof MongoRefreshTokenStore)
  t.ok(app.revocableJwt.revocationStore instanceof MemoryRevocationStore, 'revocation in memory without REDIS_URL')
  const err = await app.ready().then(() => null, (err: Error) => err)
  t.match(err?.message, /^MongoRefreshTokenStore: cannot prepare MongoDB at mongodb:\/\/127\.0\.0\.1:1\//, 'the boot fails instead of serving without a store, naming the server')
  t.equal((err?.cause as Error | undefined)?.name, 'MongoServerSelectionError', 'the driver\'s error is the cause')
})

t.test('the example against a real MongoDB', {
  skip: MONGODB_URL === undefined || MONGODB_URL === '' ? 'MONGODB_URL is not set (no MongoDB server on this machine)' : false
}, async (t) => {
  // One database per run, named in the URL so the example's own client uses it.
  const url = new URL(MONGODB_URL as string)
  url.pathname = `/frj_example_${process.pid}_${randomBytes(4).toString('hex')}`
  const clock = new TestClock()
  const app = await build({ now: clock.now, env: { MONGODB_URL: url.toString() } })
  t.teardown(async () => {
    const { MongoClient } = await import('mongodb')
    const client = new MongoClient(url.toString())
    try {
      await client.db().dropDatabase()
    } finally {
      await client.close()
      await app.close()
    }
  })
  t.ok(app.revocableJwt.refreshTokenStore instanceof MongoRefreshTokenStore)
  const session = await registerAndLogin(app)
  const first = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })
  t.equal(first.statusCode, 200)
  const rotated = refreshCookie(first) as string
  const second = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: rotated } })
  t.equal(second.statusCode, 200, 'the stored child rotates in turn')
  const sessions = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(session.accessToken) })
  t.equal(sessions.statusCode, 200)
  t.equal(sessions.json().length, 1)
  clock.advance(11_000)
  const reuse = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: session.refreshToken } })
  t.equal(reuse.statusCode, 401)
  t.equal(reuse.json().code, 'REFRESH_TOKEN_REUSED', 'the first token, rotated past the grace window, is theft')
  const after = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshCookie(second) as string } })
  t.equal(after.statusCode, 401, 'and the whole session is gone from MongoDB')
  t.equal(after.json().code, 'REFRESH_TOKEN_INVALID')
})
