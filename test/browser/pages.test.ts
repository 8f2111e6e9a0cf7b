// The server-rendered /app area in headless Chromium with JavaScript disabled: what a
// browser does with the cookies, the silent refresh, several tabs, logout, and a form
// on another origin posting to /app/logout.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Browser, BrowserContext, Page, Response } from 'playwright-core'
import { build } from '../helper.js'
import { PASSWORD, launchBrowser, newEmail, skipBrowser } from './setup.js'

const ACCESS = 'page_access_token'
const REFRESH = 'page_refresh_token'

interface Suite {
  app: FastifyInstance
  /** `http://localhost:<port>`: browsers accept `Secure` cookies from localhost over http. */
  url: string
  /** Another server serving the attacker's form, reached as another site or as a sibling origin. */
  attacker: FastifyInstance
  browser: Browser
  alarms: { reused: number, revoked: number }
}

const suite = {} as Suite

t.before(async () => {
  if (skipBrowser !== false) return
  // Two-second access tokens: waiting one out stays cheap.
  suite.app = await build({ env: { ACCESS_TOKEN_TTL: '2s' } })
  suite.alarms = { reused: 0, revoked: 0 }
  suite.app.revocableJwt.events.on('refreshTokenReused', () => { suite.alarms.reused++ })
  suite.app.revocableJwt.events.on('sessionRevoked', () => { suite.alarms.revoked++ })
  await suite.app.listen({ port: 0, host: '127.0.0.1' })
  suite.url = `http://localhost:${(suite.app.server.address() as AddressInfo).port}`
  suite.attacker = Fastify()
  suite.attacker.get('/', async (_request, reply) => {
    reply.header('content-type', 'text/html; charset=utf-8')
    return `<!doctype html><title>You won a prize</title>
<form method="post" action="${suite.url}/app/logout"><input type="hidden" name="prize" value="1"><button id="claim" type="submit">Claim</button></form>`
  })
  await suite.attacker.listen({ port: 0, host: '127.0.0.1' })
  suite.browser = await launchBrowser()
})
t.teardown(async () => {
  await suite.browser?.close()
  await suite.attacker?.close()
  await suite.app?.close()
})

/** What the pages' responses set, as the wire carried them. */
class PageWire {
  /** `METHOD /path` of every request. */
  readonly requests: string[] = []
  /** The refresh cookie values set (not cleared), one per response that rotated. */
  readonly rotations: string[] = []
  readonly #pending: Array<Promise<void>> = []

  constructor (context: BrowserContext) {
    context.on('request', request => { this.requests.push(`${request.method()} ${new URL(request.url()).pathname}`) })
    context.on('response', response => { this.#pending.push(this.#record(response)) })
  }

  async #record (response: Response): Promise<void> {
    for (const header of await response.headerValues('set-cookie')) {
      const match = new RegExp(`^${REFRESH}=([^;]*)`).exec(header)
      if (match !== null && match[1] !== '') this.rotations.push(match[1])
    }
  }

  /** Wait until every response seen so far has been read. */
  async settled (): Promise<void> {
    await Promise.all(this.#pending)
  }

  reset (): void {
    this.requests.length = 0
    this.rotations.length = 0
  }
}

async function newContext (): Promise<{ context: BrowserContext, wire: PageWire }> {
  const context = await suite.browser.newContext({ javaScriptEnabled: false })
  return { context, wire: new PageWire(context) }
}

async function register (): Promise<{ email: string, userId: string }> {
  const email = newEmail()
  const res = await suite.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  return { email, userId: res.json().id }
}

/** Sign in through the form; resolves on the account page. */
async function signIn (page: Page, email: string): Promise<void> {
  await page.goto(`${suite.url}/app/login`)
  await page.fill('#email', email)
  await page.fill('#password', PASSWORD)
  await Promise.all([page.waitForURL(`${suite.url}/app/account`), page.click('#sign-in')])
}

async function signedInAs (page: Page): Promise<string | null> {
  return new URL(page.url()).pathname === '/app/account' ? await page.textContent('#email') : null
}

/**
 * Wait until the browser's access token has expired: the JWT's `exp` (whole seconds)
 * read from the browser's own cookie, plus a margin. A real browser and a real server
 * share no injectable clock, so the test waits the two-second lifetime out.
 */
async function waitForAccessExpiry (context: BrowserContext): Promise<void> {
  const cookie = (await context.cookies(`${suite.url}/app/account`)).find(c => c.name === ACCESS)
  // Gone: its Max-Age (the lifetime, from when it was set) has passed, and so has the token's `exp`.
  if (cookie === undefined) return
  const { exp } = JSON.parse(Buffer.from(cookie.value.split('.')[1], 'base64url').toString('utf8')) as { exp: number }
  const wait = exp * 1000 + 50 - Date.now()
  if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
}

t.test('sign in with the form, let the access token expire, reload: still signed in, with one rotation on the wire', { skip: skipBrowser }, async t => {
  const { context, wire } = await newContext()
  t.teardown(() => context.close())
  const { email } = await register()
  const page = await context.newPage()
  await signIn(page, email)
  t.equal(await signedInAs(page), email)
  const cookies = await context.cookies(`${suite.url}/app/account`)
  for (const name of [ACCESS, REFRESH]) {
    t.match(cookies.find(c => c.name === name), { httpOnly: true, secure: true, sameSite: 'Lax', path: '/app' }, `${name} as the browser keeps it`)
  }
  const before = cookies.find(c => c.name === REFRESH)?.value

  await waitForAccessExpiry(context)
  await wire.settled()
  wire.reset()
  await page.reload()
  await wire.settled()
  t.equal(await signedInAs(page), email, 'still signed in')
  t.same(wire.requests.filter(r => r.includes('/app/')), ['GET /app/account'], 'the reload alone: no redirect, no script')
  t.equal(wire.rotations.length, 1, 'one rotation on the wire')
  const after = (await context.cookies(`${suite.url}/app/account`)).find(c => c.name === REFRESH)?.value
  t.ok(after !== before && after === wire.rotations[0], 'the browser keeps the rotated refresh cookie')

  wire.reset()
  await page.reload()
  await wire.settled()
  t.equal(await signedInAs(page), email)
  t.same(wire.rotations, [], 'a live access cookie again: no rotation')
})

t.test('several tabs opening the account page at once after expiry: all signed in, one session, one child, no alarm', { skip: skipBrowser }, async t => {
  const { context, wire } = await newContext()
  t.teardown(() => context.close())
  const { email, userId } = await register()
  await signIn(await context.newPage(), email)
  const alarmsBefore = { ...suite.alarms }
  const TABS = 6
  const tabs = await Promise.all(Array.from({ length: TABS }, () => context.newPage()))

  for (let round = 1; round <= 3; round++) {
    await waitForAccessExpiry(context)
    await wire.settled()
    wire.reset()
    await Promise.all(tabs.map(tab => tab.goto(`${suite.url}/app/account`)))
    await wire.settled()
    t.same(await Promise.all(tabs.map(signedInAs)), Array(TABS).fill(email), `round ${round}: every tab is signed in`)
    t.equal(wire.requests.filter(r => r === 'GET /app/account').length, TABS, `round ${round}: one load per tab, none redirected`)
    t.ok(wire.rotations.length >= 1, `round ${round}: the expired token was refreshed`)
    t.equal(new Set(wire.rotations).size, 1, `round ${round}: every rotating answer carried the same child (${wire.rotations.length} of ${TABS} loads refreshed)`)
    t.equal((await suite.app.revocableJwt.listSessions(userId)).length, 1, `round ${round}: one session`)
  }
  t.same(suite.alarms, alarmsBefore, 'no reuse alarm, no session revoked')
})

t.test('log out: both cookies gone, the account page sends to the login page, and the old cookies replayed do too', { skip: skipBrowser }, async t => {
  const { context } = await newContext()
  t.teardown(() => context.close())
  const { email, userId } = await register()
  const page = await context.newPage()
  await signIn(page, email)
  const old = (await context.cookies(`${suite.url}/app/account`)).filter(c => c.name === ACCESS || c.name === REFRESH)
  t.equal(old.length, 2)

  await Promise.all([page.waitForURL(`${suite.url}/app/login`), page.click('#sign-out')])
  t.same((await context.cookies(`${suite.url}/app/account`)).filter(c => c.name === ACCESS || c.name === REFRESH), [], 'both cookies cleared')
  t.same(await suite.app.revocableJwt.listSessions(userId), [], 'the session is revoked')
  await page.goto(`${suite.url}/app/account`)
  t.equal(new URL(page.url()).pathname, '/app/login', 'the account page sends to the login page')

  await context.addCookies(old)
  await page.goto(`${suite.url}/app/account`)
  t.equal(new URL(page.url()).pathname, '/app/login', 'the old cookies replayed: the login page')
})

t.test('a form on another origin posting to /app/logout is refused, and the session goes on', { skip: skipBrowser }, async t => {
  const { context } = await newContext()
  t.teardown(() => context.close())
  const { email, userId } = await register()
  const page = await context.newPage()
  await signIn(page, email)
  const port = (suite.attacker.server.address() as AddressInfo).port

  for (const [name, origin, site] of [
    ['another site', `http://127.0.0.1:${port}`, 'cross-site'],
    // Same site (localhost), another origin: SameSite lets the cookies go; the Origin check does not.
    ['a sibling origin of the same site', `http://localhost:${port}`, 'same-site']
  ] as const) {
    const attack = await context.newPage()
    await attack.goto(`${origin}/`)
    const [response] = await Promise.all([
      attack.waitForResponse(r => r.url() === `${suite.url}/app/logout`),
      attack.click('#claim')
    ])
    t.equal(response.status(), 403, name)
    t.equal((await response.json()).code, 'CROSS_SITE_REQUEST', name)
    t.equal(await response.request().headerValue('origin'), origin, `${name}: the browser named the form's origin`)
    t.equal(await response.request().headerValue('sec-fetch-site'), site, `${name}: and its site`)
    t.same(await response.headerValues('set-cookie'), [], `${name}: no cookie cleared`)
    await attack.close()
  }
  t.equal((await suite.app.revocableJwt.listSessions(userId)).length, 1, 'the session was not ended')
  await page.goto(`${suite.url}/app/account`)
  t.equal(await signedInAs(page), email, 'still signed in')
})
