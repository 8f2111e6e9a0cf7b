import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type BrowserContext, type Locator, type Page, type Route } from 'playwright-core'
import type { Test } from 'tap'
import { build } from '../helper.js'

/** Debian's chromium; override with CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Without these, Chromium's own background connections are refused on a closed network and slow it down. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/**
 * Why a browser test is skipped: only outside CI, where Chromium may simply not be
 * installed. In CI (.ci/run installs it) a missing browser fails the tests instead.
 */
export const skipBrowser: string | false = existsSync(CHROMIUM_PATH) || process.env.CI !== undefined
  ? false
  : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`

/**
 * Access tokens of the demo that the expiry tests use live this long. The server
 * rounds `exp` down to the second, so a fresh token may have only TTL - 1 s left, and
 * a refreshed token must still be valid when the retried request arrives. "Who am I"
 * on an expired token (request, refresh, retry) took up to 1.7 s with both cores busy
 * and a load average above 20; 5 s keeps at least 4 s.
 */
export const EXPIRING_TTL_MS = 5000

export interface Demo {
  /** `http://localhost:<port>`: localhost, because browsers accept `Secure` cookies from it over http. */
  url: string
  close: () => Promise<void>
}

export interface DemoOptions {
  /**
   * Lifetime of the access tokens. The default, the example's 15 minutes, is for every
   * test that does not wait for a token to expire: a token that expires mid-test adds a
   * refresh (and a retried request) to the wire that the test did not ask for.
   * @default 900_000
   */
  accessTokenTtlMs?: number
}

/** The example server, listening on a free port, with the default Secure cookie. */
export async function startDemo ({ accessTokenTtlMs = 900_000 }: DemoOptions = {}): Promise<Demo> {
  const app = await build({ env: { ACCESS_TOKEN_TTL: `${accessTokenTtlMs / 1000}s`, REFRESH_REUSE_GRACE: '1s' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { url: `http://localhost:${port}`, close: () => app.close() }
}

export async function launchBrowser (): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
}

/** What a browser test file shares: Chromium and two demo servers. */
export interface BrowserSuite {
  /** Access tokens that outlive the test: for every test that does not wait for one to expire. */
  demo: Demo
  /** Access tokens of {@link EXPIRING_TTL_MS}: for the tests that wait for one to expire. */
  expiring: Demo
  browser: Browser
}

/**
 * Start the demo servers and Chromium once before the file's tests (unless the browser
 * tests are skipped) and stop them after. The fields are set by the time a test runs.
 */
export function useBrowserSuite (t: Test): BrowserSuite {
  const suite = {} as BrowserSuite
  t.before(async () => {
    if (skipBrowser !== false) return
    suite.demo = await startDemo()
    suite.expiring = await startDemo({ accessTokenTtlMs: EXPIRING_TTL_MS })
    suite.browser = await launchBrowser()
  })
  t.teardown(async () => {
    await suite.browser?.close()
    await suite.demo?.close()
    await suite.expiring?.close()
  })
  return suite
}

/** The requests of one browser context, as the wire saw them. */
export class Wire {
  readonly requests: string[] = []
  inflightRefreshes = 0
  maxConcurrentRefreshes = 0
  /** Codes of the error answers of `/auth/refresh`, read from their bodies as they arrive. */
  #refreshErrors: Array<Promise<string>> = []

  constructor (context: BrowserContext) {
    context.on('request', request => {
      const path = new URL(request.url()).pathname
      this.requests.push(`${request.method()} ${path}`)
      if (path === '/auth/refresh') {
        this.inflightRefreshes++
        this.maxConcurrentRefreshes = Math.max(this.maxConcurrentRefreshes, this.inflightRefreshes)
      }
    })
    const settled = (request: { url: () => string }): void => {
      if (new URL(request.url()).pathname === '/auth/refresh') this.inflightRefreshes--
    }
    context.on('requestfinished', settled)
    context.on('requestfailed', settled)
    context.on('response', response => {
      if (new URL(response.url()).pathname !== '/auth/refresh' || response.status() === 200) return
      // Counted now, when the answer is seen; its body is read later.
      this.#refreshErrors.push(response.json().then((body: { code: string }) => body.code, () => `${response.status()} without a JSON body`))
    })
  }

  count (request: string): number {
    return this.requests.filter(r => r === request).length
  }

  /** The codes of the refresh answers that were not 200, since the last reset. */
  async refreshErrors (): Promise<string[]> {
    return await Promise.all(this.#refreshErrors)
  }

  /** Forget what was seen so far, so that the next assertions count one step only. */
  reset (): void {
    this.requests.length = 0
    this.#refreshErrors = []
  }
}

/**
 * Holds requests to one path on demand, so that requests that must race really do.
 * Install it before the context sends anything, and keep it: Playwright turns request
 * interception on and off as routes come and go, and a request sent while it does is
 * never reported as a `request` event (a route with `times` did that to a retried
 * request on the wire).
 */
export class Gate {
  #count = 0
  readonly #held: Route[] = []

  static async install (context: BrowserContext, path: string): Promise<Gate> {
    const gate = new Gate()
    await context.route(url => url.pathname === path, async route => { await gate.#arrive(route) })
    return gate
  }

  /**
   * Hold the next `count` requests until all of them have been sent, then let them go
   * together: however late one tab's timer fires, the other tab's request cannot be
   * answered (and start a refresh) before it is sent.
   */
  holdNext (count: number): void {
    this.#count = count
  }

  async #arrive (route: Route): Promise<void> {
    if (this.#count === 0) {
      await route.continue()
      return
    }
    this.#held.push(route)
    if (this.#held.length < this.#count) return
    this.#count = 0
    await Promise.all(this.#held.splice(0).map(async held => { await held.continue() }))
  }
}

let users = 0

export function newEmail (): string {
  return `browser${++users}-${process.pid}@example.com`
}

export const PASSWORD = 'correct horse battery'

/** Open the demo page and wait until its script has started the client (and, when signed in, answered "who am I"). */
export async function openDemo (context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(url)
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
  return page
}

/** The actions of the demo page, each counted on `<body>` as `data-done-<action>` once it has finished. */
export type DemoAction = 'register' | 'login' | 'whoami' | 'refresh' | 'logout' | 'logout-all' | 'reload-sessions' | 'revoke'

/** How many times the page has finished `action`. */
export async function doneCount (page: Page, action: DemoAction): Promise<number> {
  return Number(await page.getAttribute('body', `data-done-${action}`) ?? 0)
}

/**
 * Click what starts `action` (its button `#<action>` unless told) and wait until the page
 * has finished it: every request of the action answered and the outcome shown. A test
 * never has two of the same action in flight in one page, so the next count is this click's.
 */
export async function act (page: Page, action: DemoAction, target: string | Locator = `#${action}`): Promise<void> {
  const before = await doneCount(page, action)
  await (typeof target === 'string' ? page.locator(target) : target).click()
  await waitForDone(page, action, before + 1)
}

/** Wait until the page has finished `action` `count` times in all. */
export async function waitForDone (page: Page, action: DemoAction, count: number): Promise<void> {
  await page.waitForSelector(`body[data-done-${action}="${count}"]`, { state: 'attached' })
}

/** Register (when asked) and log in through the page's form; resolves once "who am I" and the session list have answered. */
export async function signIn (page: Page, email: string, register: boolean): Promise<void> {
  await page.fill('#email', email)
  await page.fill('#password', PASSWORD)
  await act(page, register ? 'register' : 'login')
  const status = await page.textContent('#status')
  if (status !== `Signed in as ${email}`) throw new Error(`sign-in as ${email} failed: status "${status}", error "${await page.textContent('#form-error')}"`)
}

/** When the page's access token expires, in ms since the epoch (the page's clock is this machine's). */
export async function tokenExpiry (page: Page): Promise<number> {
  return await page.evaluate(() => (window as unknown as { demo: { client: { expiresAt: number } } }).demo.client.expiresAt)
}

/**
 * Wait until the page's access token has really expired, which the page shows as
 * `data-token="expired"`. This is a real browser talking to a real server over a
 * socket: no clock can be injected into both, so the test waits the TTL out. The
 * client's `expiresAt` (arrival + `expiresIn`) is never earlier than the JWT's `exp`,
 * which the server rounds down to the second, so the server agrees.
 */
export async function waitForExpiry (page: Page): Promise<void> {
  await page.waitForSelector('body[data-token="expired"]', { state: 'attached' })
}

/** Screenshots go to a git-ignored folder, or to docs/ with UPDATE_SCREENSHOTS=1. */
export async function screenshot (page: Page, name: string): Promise<string> {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? new URL('../../docs/', import.meta.url) : new URL('screenshots/tmp/', import.meta.url)
  await mkdir(dir, { recursive: true })
  const path = new URL(name, dir).pathname
  await page.screenshot({ path, fullPage: true })
  return path
}
