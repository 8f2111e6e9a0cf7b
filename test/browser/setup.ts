import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
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
 * rounds `exp` down to the second, so a fresh token may have only TTL - 1 s left:
 * 3 s keeps 2 s for a refreshed token to reach the retried request on a busy machine.
 */
export const EXPIRING_TTL_MS = 3000

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
  /** Codes of the error answers of `/auth/refresh`. */
  readonly refreshErrors: string[] = []
  inflightRefreshes = 0
  maxConcurrentRefreshes = 0

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
      response.json().then((body: { code: string }) => { this.refreshErrors.push(body.code) }, () => {})
    })
  }

  count (request: string): number {
    return this.requests.filter(r => r === request).length
  }

  /** Forget what was seen so far, so that the next assertions count one step only. */
  reset (): void {
    this.requests.length = 0
    this.refreshErrors.length = 0
  }
}

let users = 0

export function newEmail (): string {
  return `browser${++users}-${process.pid}@example.com`
}

export const PASSWORD = 'correct horse battery'

/** Open the demo page and wait until its script has started the client. */
export async function openDemo (context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(url)
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
  return page
}

/** Register (when asked) and log in through the page's form; waits for "who am I" to answer. */
export async function signIn (page: Page, email: string, register: boolean): Promise<void> {
  await page.fill('#email', email)
  await page.fill('#password', PASSWORD)
  await page.click(register ? '#register' : '#login')
  await page.waitForSelector(`#status:has-text("Signed in as ${email}")`)
}

/** When the page's access token expires, in ms since the epoch (the page's clock is this machine's). */
export async function tokenExpiry (page: Page): Promise<number> {
  return await page.evaluate(() => (window as unknown as { demo: { client: { expiresAt: number } } }).demo.client.expiresAt)
}

/**
 * Wait until a real access token has really expired. This is a real browser talking to a
 * real server over a socket: no clock can be injected into both, so the test waits
 * the TTL out. The client's `expiresAt` (arrival + `expiresIn`) is never
 * earlier than the JWT's `exp`, which the server rounds down to the second.
 */
export async function waitForExpiry (...pages: Page[]): Promise<void> {
  const expiries = await Promise.all(pages.map(tokenExpiry))
  const wait = Math.max(...expiries) + 50 - Date.now()
  if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
}

/** Screenshots go to a git-ignored folder, or to docs/ with UPDATE_SCREENSHOTS=1. */
export async function screenshot (page: Page, name: string): Promise<string> {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? new URL('../../docs/', import.meta.url) : new URL('screenshots/tmp/', import.meta.url)
  await mkdir(dir, { recursive: true })
  const path = new URL(name, dir).pathname
  await page.screenshot({ path, fullPage: true })
  return path
}
