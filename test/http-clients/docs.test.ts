// docs/http-clients.md: its recipes are the files the client tests run, and the
// settings it describes behave as it says.
import { readdir, readFile } from 'node:fs/promises'
import t, { type Test } from 'tap'
import { CookieJar } from 'tough-cookie'
import { build, registerAndLogin } from '../helper.js'

const DOC = 'docs/http-clients.md'
const RECIPES = 'test/http-clients/recipes'

t.test('the page shows each recipe exactly as the tests run it', async (t) => {
  const doc = await readFile(DOC, 'utf8')
  const files = (await readdir(RECIPES)).filter(name => name.endsWith('.ts')).sort()
  t.same(files, ['axios.ts', 'ky.ts', 'ofetch.ts'])
  for (const name of files) {
    const path = `${RECIPES}/${name}`
    const shown = new RegExp(`<!-- recipe: ${path} -->\\n\`\`\`ts\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(doc)
    t.ok(shown, `${DOC} shows ${path}`)
    t.equal(shown?.[1], (await readFile(path, 'utf8')).trimEnd(), `${DOC} shows ${path} as it is`)
  }
})

/** Whether a tough-cookie jar keeps the refresh cookie of a login answered from `url`. */
async function keptBy (setCookie: string[], url: string): Promise<boolean> {
  const jar = new CookieJar()
  // ignoreError, as fetch-cookie and axios-cookiejar-support do: a refused cookie is dropped silently.
  for (const header of setCookie) await jar.setCookie(header, `${url}/auth/login`, { ignoreError: true })
  return (await jar.getCookies(`${url}/auth/refresh`)).some(c => c.key === 'refresh_token')
}

async function loginSetCookie (t: Test, env: Record<string, string>): Promise<string[]> {
  const app = await build({ env })
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'jar@example.com', password: 'correct horse battery' } })
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'jar@example.com', password: 'correct horse battery' } })
  t.equal(res.statusCode, 200)
  const header = res.headers['set-cookie']
  return Array.isArray(header) ? header : header === undefined ? [] : [header]
}

t.test('a Secure refresh cookie over plain http is kept for loopback hosts only; COOKIE_SECURE=false keeps it everywhere', async (t) => {
  const secure = await loginSetCookie(t, {})
  t.ok(await keptBy(secure, 'http://127.0.0.1:3000'), 'kept for 127.0.0.1')
  t.ok(await keptBy(secure, 'http://localhost:3000'), 'kept for localhost')
  t.ok(await keptBy(secure, 'http://[::1]:3000'), 'kept for [::1]')
  t.notOk(await keptBy(secure, 'http://api:3000'), 'a container name over plain http: dropped')
  t.notOk(await keptBy(secure, 'http://192.168.1.20:3000'), 'a LAN address over plain http: dropped')
  t.ok(await keptBy(secure, 'https://api.example.com'), 'kept over https')

  const plain = await loginSetCookie(t, { COOKIE_SECURE: 'false' })
  t.ok(await keptBy(plain, 'http://api:3000'), 'not Secure: kept for a container name')
  t.ok(await keptBy(plain, 'http://192.168.1.20:3000'), 'not Secure: kept for a LAN address')
})

t.test('an Origin that differs from Host only by localhost and 127.0.0.1 is refused, unless allowed', async (t) => {
  for (const [env, status, code] of [
    [{}, 403, 'CROSS_SITE_REQUEST'],
    [{ ALLOWED_ORIGINS: 'http://localhost:3000' }, 200, undefined]
  ] as const) {
    const app = await build({ env })
    t.teardown(() => app.close())
    const { refreshToken } = await registerAndLogin(app)
    const res = await app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: { host: '127.0.0.1:3000', origin: 'http://localhost:3000', cookie: `refresh_token=${refreshToken}` }
    })
    t.equal(res.statusCode, status, JSON.stringify(env))
    t.equal(res.json().code, code)
  }
})
