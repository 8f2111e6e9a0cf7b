// The auth service (example/server.ts, EdDSA) and a resource server (example/api) as
// real processes on one private Redis: revocation on one enforced on the other, key
// rotation, unknown kids, forgeries and outages, over HTTP.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import { jwkThumbprint, publicJwkOf } from '../lib/domain/keys.js'
import { RedisServer } from './redis-server.js'
import { startServerProcess, stopServerProcess, type ServerProcess } from './processes.js'
import { TEST_SECRET } from './helper.js'

const PASSWORD = 'correct horse battery'

function keyPair (): { privateKey: string, publicKey: string, kid: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  return { privateKey, publicKey, kid: jwkThumbprint(publicJwkOf(publicKey)) }
}

/** In front of the auth service: counts the JWKS fetches the resource server makes, and can be pointed elsewhere or nowhere. */
class JwksProxy {
  fetches = 0
  target: string | null = null
  readonly #server: Server

  constructor () {
    this.#server = createServer((request, response) => {
      if (request.url === '/.well-known/jwks.json') this.fetches++
      if (this.target === null) {
        response.destroy()
        return
      }
      fetch(`${this.target}${request.url as string}`).then(async (upstream) => {
        response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' })
        response.end(await upstream.text())
      }, () => response.destroy())
    })
  }

  async listen (): Promise<string> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  async close (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise(resolve => this.#server.close(resolve))
  }
}

const redis = await RedisServer.start({ persistent: true })
t.teardown(() => redis.close())
const proxy = new JwksProxy()
const proxyUrl = await proxy.listen()
t.teardown(() => proxy.close())

const current = keyPair()
const next = keyPair()
const authEnv = { JWT_ALGORITHM: 'EdDSA', JWT_SECRET: TEST_SECRET, REDIS_URL: redis.url, COOKIE_SECURE: 'false' }
// The next key is published before it signs.
let auth = await startServerProcess('example/server.ts', { ...authEnv, JWT_PRIVATE_KEY: current.privateKey, JWT_PUBLIC_KEYS: next.publicKey })
proxy.target = auth.base
const api = await startServerProcess('example/api/server.ts', { AUTH_URL: proxyUrl, REDIS_URL: redis.url })
t.teardown(async () => { await stopServerProcess(api); await stopServerProcess(auth) })

interface Reply { status: number, body: any, cookie?: string }

async function call (server: ServerProcess, method: string, path: string, options: { token?: string, cookie?: string, body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.cookie !== undefined) headers.cookie = `refresh_token=${options.cookie}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${server.base}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) })
  const text = await res.text()
  const set = res.headers.getSetCookie().find(c => c.startsWith('refresh_token='))
  const cookie = set?.slice('refresh_token='.length, set.indexOf(';'))
  return { status: res.status, body: text === '' ? null : JSON.parse(text), ...(cookie !== undefined && cookie !== '' && { cookie }) }
}

let users = 0
async function signUp (): Promise<{ email: string, accessToken: string, refreshToken: string, id: string }> {
  const email = `user${++users}-${process.pid}@example.com`
  const registered = await call(auth, 'POST', '/auth/register', { body: { email, password: PASSWORD } })
  const login = await call(auth, 'POST', '/auth/login', { body: { email, password: PASSWORD } })
  if (login.status !== 200) throw new Error(`login: ${login.status}`)
  return { email, accessToken: login.body.accessToken, refreshToken: login.cookie as string, id: registered.body.id }
}

async function me (token: string): Promise<[number, string | undefined]> {
  const res = await call(api, 'GET', '/me', { token })
  return [res.status, res.status === 200 ? res.body.id : res.body?.code]
}

t.test('the auth service publishes its public keys only, with kid, alg, use and cache headers', async (t) => {
  const res = await fetch(`${auth.base}/.well-known/jwks.json`)
  t.equal(res.status, 200)
  t.match(res.headers.get('cache-control'), /max-age=\d+/)
  const { keys } = await res.json() as { keys: Array<Record<string, unknown>> }
  t.same(keys.map(key => key.kid), [current.kid, next.kid], 'the signing key and the next one')
  for (const key of keys) {
    t.match(key, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', x: String })
    t.notOk('d' in key, 'no private member')
  }
})

t.test('a token of the auth service works on the resource server; a missing, broken or expired one answers as the auth service would', async (t) => {
  const user = await signUp()
  t.same(await me(user.accessToken), [200, user.id])
  t.same(await me(''), [401, 'TOKEN_MISSING'])
  t.same(await me('not.a.token'), [401, 'TOKEN_INVALID'])
  const now = Math.floor(Date.now() / 1000)
  const expired = createSigner({ key: current.privateKey, algorithm: 'EdDSA', kid: current.kid, ...{ typ: 'at+jwt' } } as never)({ sub: user.id, sid: 'AAAAAAAAAAAAAAAAAAAAAA', jti: 'j', ver: 0, iat: now - 3600, exp: now - 60 })
  t.same(await me(expired as string), [401, 'TOKEN_EXPIRED'])
  const noToken = await fetch(`${api.base}/me`)
  t.equal(noToken.status, 401)
})

t.test('logout, logout-all, password change, session revoke and reuse on the auth service are enforced here at the next request', async (t) => {
  const user = await signUp()
  t.equal((await call(auth, 'POST', '/auth/logout', { token: user.accessToken, cookie: user.refreshToken })).status, 204)
  t.same(await me(user.accessToken), [401, 'TOKEN_REVOKED'], 'logout')

  const other = await signUp()
  const second = await call(auth, 'POST', '/auth/login', { body: { email: other.email, password: PASSWORD } })
  t.equal((await call(auth, 'POST', '/auth/logout-all', { token: other.accessToken })).status, 204)
  t.same(await me(second.body.accessToken), [401, 'TOKEN_REVOKED'], 'logout-all')

  const changer = await signUp()
  t.equal((await call(auth, 'POST', '/auth/password', { token: changer.accessToken, body: { currentPassword: PASSWORD, newPassword: 'a new password here' } })).status, 200)
  t.same(await me(changer.accessToken), [401, 'TOKEN_REVOKED'], 'password change')

  const owner = await signUp()
  const phone = await call(auth, 'POST', '/auth/login', { body: { email: owner.email, password: PASSWORD } })
  const sessions = (await call(auth, 'GET', '/auth/sessions', { token: owner.accessToken })).body as Array<{ id: string, current: boolean }>
  const phoneSession = sessions.find(s => !s.current) as { id: string }
  t.equal((await call(auth, 'DELETE', `/auth/sessions/${phoneSession.id}`, { token: owner.accessToken })).status, 204)
  t.same(await me(phone.body.accessToken), [401, 'TOKEN_REVOKED'], 'session revoke')
  t.same(await me(owner.accessToken), [200, owner.id], 'the other device is untouched')

  const victim = await signUp()
  const rotated = await call(auth, 'POST', '/auth/refresh', { cookie: victim.refreshToken })
  t.equal(rotated.status, 200)
  t.same(await me(rotated.body.accessToken), [200, victim.id])
  // Past the 10 s grace window: the rotated token is presented again, as a thief would.
  await new Promise(resolve => setTimeout(resolve, 10_100))
  t.equal((await call(auth, 'POST', '/auth/refresh', { cookie: victim.refreshToken })).body.code, 'REFRESH_TOKEN_REUSED')
  t.same(await me(rotated.body.accessToken), [401, 'TOKEN_REVOKED'], 'detected reuse')
})

t.test('forgeries are refused: another key under a known kid, alg none, HMAC with the public key', async (t) => {
  const user = await signUp()
  const claims = JSON.parse(Buffer.from(user.accessToken.split('.')[1], 'base64url').toString())
  const stranger = keyPair()
  const otherKey = createSigner({ key: stranger.privateKey, algorithm: 'EdDSA', kid: current.kid, ...{ typ: 'at+jwt' } } as never)({ ...claims, iat: undefined, exp: undefined })
  t.same(await me(otherKey as string), [401, 'TOKEN_INVALID'])
  const header = (alg: string): string => Buffer.from(JSON.stringify({ alg, typ: 'at+jwt', kid: current.kid })).toString('base64url')
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url')
  t.same(await me(`${header('none')}.${body}.`), [401, 'TOKEN_INVALID'])
  const hmac = createSigner({ key: current.publicKey, algorithm: 'HS256', kid: current.kid, ...{ typ: 'at+jwt' } } as never)({ ...claims, iat: undefined, exp: undefined })
  t.same(await me(hmac as string), [401, 'TOKEN_INVALID'])
})

t.test('a burst of unknown kids fetches the JWKS at most once per cooldown', async (t) => {
  const user = await signUp()
  const claims = JSON.parse(Buffer.from(user.accessToken.split('.')[1], 'base64url').toString())
  const before = proxy.fetches
  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 200 }, () => {
    const forged = createSigner({ key: current.privateKey, algorithm: 'EdDSA', kid: randomBytes(8).toString('hex'), ...{ typ: 'at+jwt' } } as never)({ ...claims, iat: undefined, exp: undefined })
    return me(forged as string)
  }))
  const seconds = (Date.now() - started) / 1000
  t.ok(answers.every(([status, code]) => status === 401 && code === 'TOKEN_INVALID'), 'every unknown kid is refused')
  const fetched = proxy.fetches - before
  t.comment(`${fetched} JWKS fetch(es) for 200 unknown kids in ${seconds.toFixed(1)} s`)
  t.ok(fetched <= 1 + Math.floor(seconds / 5), `${fetched} fetch(es), at most one per 5 s cooldown`)
})

t.test('rotating the signing key fails no request: published before it signs, the old one kept while its tokens live', async (t) => {
  const before = await signUp()
  // Traffic goes on through the whole switch.
  const switching = { done: false }
  const during: Array<[number, string | undefined]> = []
  const traffic = (async () => {
    while (!switching.done) during.push(await me(before.accessToken))
  })()
  // The new deployment: the next key signs, the old one is still published.
  const rotatedAuth = await startServerProcess('example/server.ts', { ...authEnv, JWT_PRIVATE_KEY: next.privateKey, JWT_PUBLIC_KEYS: current.publicKey })
  const old = auth
  proxy.target = rotatedAuth.base
  auth = rotatedAuth
  await stopServerProcess(old)
  const after = await signUp()
  switching.done = true
  await traffic
  t.ok(during.length > 0)
  t.same(during.filter(([status]) => status !== 200), [], `${during.length} requests during the switch, none failed`)
  t.equal(JSON.parse(Buffer.from(after.accessToken.split('.')[0], 'base64url').toString()).kid, next.kid, 'new tokens carry the new kid')
  const fetchesBefore = proxy.fetches
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => me(i % 2 === 0 ? before.accessToken : after.accessToken)))
  t.same(results.filter(([status]) => status !== 200), [], 'tokens of both keys pass')
  t.equal(proxy.fetches, fetchesBefore, 'the new key was already known: no fetch was needed')
})

t.test('the store down: 503, never a 200; back: answers again without a restart', async (t) => {
  const user = await signUp()
  t.equal((await me(user.accessToken))[0], 200)
  await redis.stop()
  const down = await Promise.all(Array.from({ length: 10 }, () => me(user.accessToken)))
  t.same(down, Array.from({ length: 10 }, () => [503, 'AUTH_STORE_UNAVAILABLE']))
  await redis.restart()
  const deadline = Date.now() + 15_000
  let status = 0
  while (Date.now() < deadline && status !== 200) {
    [status] = await me(user.accessToken)
    // Reconnecting: ioredis retries on its own schedule; the request is the event we wait for.
    if (status !== 200) await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.equal(status, 200)
})

t.test('the JWKS unreachable, even at boot: 503, never a 200 or a 500; reachable again: answers without a restart', async (t) => {
  const user = await signUp()
  proxy.target = null
  const coldApi = await startServerProcess('example/api/server.ts', { AUTH_URL: proxyUrl, REDIS_URL: redis.url })
  t.teardown(() => stopServerProcess(coldApi))
  const cold = await fetch(`${coldApi.base}/me`, { headers: { authorization: `Bearer ${user.accessToken}` } })
  t.same([cold.status, (await cold.json()).code], [503, 'AUTH_STORE_UNAVAILABLE'], 'the resource server boots and refuses what it cannot check')
  proxy.target = auth.base
  const deadline = Date.now() + 20_000
  let status = 0
  while (Date.now() < deadline && status !== 200) {
    status = (await fetch(`${coldApi.base}/me`, { headers: { authorization: `Bearer ${user.accessToken}` } })).status
    t.not(status, 500)
    // After a failed fetch the next one waits for the cooldown: the answer is the event.
    if (status !== 200) await new Promise(resolve => setTimeout(resolve, 200))
  }
  t.equal(status, 200, 'recovered without a restart')
})
