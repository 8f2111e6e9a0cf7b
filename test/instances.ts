// Two example server processes on real ports sharing one store server: whatever one
// instance revokes, the other enforces at once. Over HTTP, because two processes
// sharing nothing but the store server is the point. Run per store by
// redis-instances.test.ts and postgres-instances.test.ts.
import t from 'tap'
import { startServerProcess, stopServerProcess, type ServerProcess } from './processes.js'
import { TEST_SECRET } from './helper.js'

const PASSWORD = 'correct horse battery'

type Instance = ServerProcess

/** Start two example processes with `env` (the store's URL) and run the cases against them. */
export async function instancesContract (env: Record<string, string>): Promise<void> {
  const startInstance = (): Promise<Instance> => startServerProcess('example/server.ts', {
    JWT_SECRET: TEST_SECRET,
    ...env,
    COOKIE_SECURE: 'false',
    // No grace: a second presentation of a rotated token is reuse, without waiting.
    REFRESH_REUSE_GRACE: '0'
  })
  const [a, b] = await Promise.all([startInstance(), startInstance()])
  t.teardown(() => Promise.all([stopServerProcess(a), stopServerProcess(b)]))
  cases(a, b)
}

interface Reply {
  status: number
  body: any
  refreshToken: string | undefined
}

async function call (instance: Instance, method: string, path: string, options: { token?: string, cookie?: string, body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.cookie !== undefined) headers.cookie = `refresh_token=${options.cookie}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${instance.base}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) })
  const text = await res.text()
  const cookie = res.headers.getSetCookie().find(c => c.startsWith('refresh_token='))
  const value = cookie?.slice('refresh_token='.length, cookie.indexOf(';'))
  return { status: res.status, body: text === '' ? null : JSON.parse(text), refreshToken: value === '' ? undefined : value }
}

let counter = 0
async function register (instance: Instance): Promise<string> {
  const email = `multi${++counter}-${process.pid}@example.com`
  const res = await call(instance, 'POST', '/auth/register', { body: { email, password: PASSWORD } })
  if (res.status !== 201) throw new Error(`register failed: ${res.status}`)
  return email
}

async function login (instance: Instance, email: string, password = PASSWORD): Promise<{ accessToken: string, refreshToken: string }> {
  const res = await call(instance, 'POST', '/auth/login', { body: { email, password } })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
  return { accessToken: res.body.accessToken, refreshToken: res.refreshToken as string }
}

function sessionIdOf (accessToken: string): string {
  return JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid
}

function cases (a: Instance, b: Instance): void {
  t.test('a user registered on one instance logs in on the other, and its refresh token works there', async (t) => {
    const email = await register(a)
    const session = await login(b, email)
    t.equal((await call(a, 'GET', '/me', { token: session.accessToken })).status, 200)
    const refreshed = await call(a, 'POST', '/auth/refresh', { cookie: session.refreshToken })
    t.equal(refreshed.status, 200, 'a refresh token minted by B refreshes on A')
    t.ok(refreshed.refreshToken)
    t.equal((await call(b, 'GET', '/me', { token: refreshed.body.accessToken })).status, 200)
  })

  t.test('logout on one instance is enforced by the other at once', async (t) => {
    const email = await register(a)
    const session = await login(a, email)
    const other = await login(a, email)
    t.equal((await call(b, 'GET', '/me', { token: session.accessToken })).status, 200)
    t.equal((await call(a, 'POST', '/auth/logout', { token: session.accessToken, cookie: session.refreshToken })).status, 204)
    const me = await call(b, 'GET', '/me', { token: session.accessToken })
    t.equal(me.status, 401)
    t.equal(me.body.code, 'TOKEN_REVOKED')
    const refresh = await call(b, 'POST', '/auth/refresh', { cookie: session.refreshToken })
    t.equal(refresh.status, 401)
    t.equal(refresh.body.code, 'REFRESH_TOKEN_INVALID')
    t.equal((await call(b, 'GET', '/me', { token: other.accessToken })).status, 200, 'the other session keeps working')
  })

  t.test('logout-all on one instance ends every session on the other', async (t) => {
    const email = await register(a)
    const first = await login(a, email)
    const second = await login(b, email)
    t.equal((await call(b, 'POST', '/auth/logout-all', { token: second.accessToken })).status, 204)
    for (const [instance, session] of [[a, first], [a, second], [b, first]] as const) {
      const me = await call(instance, 'GET', '/me', { token: session.accessToken })
      t.equal(me.status, 401)
      t.equal(me.body.code, 'TOKEN_REVOKED')
    }
    const refresh = await call(a, 'POST', '/auth/refresh', { cookie: first.refreshToken })
    t.equal(refresh.status, 401)
    t.equal(refresh.body.code, 'REFRESH_TOKEN_INVALID')
  })

  t.test('a password change on one instance invalidates the old tokens on the other and the new ones work there', async (t) => {
    const email = await register(a)
    const old = await login(b, email)
    const changed = await call(a, 'POST', '/auth/password', { token: old.accessToken, body: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' } })
    t.equal(changed.status, 200)
    const me = await call(b, 'GET', '/me', { token: old.accessToken })
    t.equal(me.status, 401)
    t.equal(me.body.code, 'TOKEN_REVOKED')
    const refresh = await call(b, 'POST', '/auth/refresh', { cookie: old.refreshToken })
    t.equal(refresh.status, 401)
    t.equal(refresh.body.code, 'REFRESH_TOKEN_INVALID')
    t.equal((await call(b, 'GET', '/me', { token: changed.body.accessToken })).status, 200)
    t.equal((await call(b, 'POST', '/auth/refresh', { cookie: changed.refreshToken })).status, 200)
    const oldPassword = await call(b, 'POST', '/auth/login', { body: { email, password: PASSWORD } })
    t.equal(oldPassword.status, 401, 'the old password is refused on the other instance')
    t.equal(oldPassword.body.code, 'INVALID_CREDENTIALS')
  })

  t.test('a session revoked from the list on one instance stops working on the other', async (t) => {
    const email = await register(a)
    const laptop = await login(a, email)
    const phone = await login(b, email)
    const list = await call(b, 'GET', '/auth/sessions', { token: phone.accessToken })
    t.equal(list.status, 200)
    const laptopId = sessionIdOf(laptop.accessToken)
    t.same(list.body.map((s: { id: string }) => s.id).sort(), [laptopId, sessionIdOf(phone.accessToken)].sort())
    t.equal((await call(b, 'DELETE', `/auth/sessions/${laptopId}`, { token: phone.accessToken })).status, 204)
    const me = await call(a, 'GET', '/me', { token: laptop.accessToken })
    t.equal(me.status, 401)
    t.equal(me.body.code, 'TOKEN_REVOKED')
    const refresh = await call(a, 'POST', '/auth/refresh', { cookie: laptop.refreshToken })
    t.equal(refresh.status, 401)
    t.equal(refresh.body.code, 'REFRESH_TOKEN_INVALID')
    t.equal((await call(a, 'GET', '/me', { token: phone.accessToken })).status, 200)
  })

  t.test('rotation on one instance is seen by the other, which detects reuse and revokes the session', async (t) => {
    const email = await register(a)
    const session = await login(a, email)
    const rotated = await call(a, 'POST', '/auth/refresh', { cookie: session.refreshToken })
    t.equal(rotated.status, 200)
    const reused = await call(b, 'POST', '/auth/refresh', { cookie: session.refreshToken })
    t.equal(reused.status, 401, 'the rotated token presented again on B')
    t.equal(reused.body.code, 'REFRESH_TOKEN_REUSED')
    const newest = await call(a, 'POST', '/auth/refresh', { cookie: rotated.refreshToken })
    t.equal(newest.status, 401, 'the thief\'s and the victim\'s newest token are both dead')
    t.equal(newest.body.code, 'REFRESH_TOKEN_INVALID')
    for (const token of [session.accessToken, rotated.body.accessToken as string]) {
      const me = await call(a, 'GET', '/me', { token })
      t.equal(me.status, 401)
      t.equal(me.body.code, 'TOKEN_REVOKED')
    }
  })

  t.test('failed logins are counted across instances', async (t) => {
    const email = await register(a)
    for (let i = 0; i < 5; i++) {
      const res = await call(i % 2 === 0 ? a : b, 'POST', '/auth/login', { body: { email, password: 'wrong password' } })
      t.equal(res.status, 401)
      t.equal(res.body.code, 'INVALID_CREDENTIALS')
    }
    const blocked = await call(b, 'POST', '/auth/login', { body: { email, password: PASSWORD } })
    t.equal(blocked.status, 429)
    t.equal(blocked.body.code, 'TOO_MANY_LOGIN_ATTEMPTS')
  })
}
