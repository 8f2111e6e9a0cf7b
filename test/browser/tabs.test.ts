import t from 'tap'
import type { Page } from 'playwright-core'
import { Gate, Wire, act, doneCount, newEmail, openDemo, screenshot, signIn, skipBrowser, tokenExpiry, useBrowserSuite, waitForDone } from './setup.js'

const suite = useBrowserSuite(t)

interface DemoWindow { demo: { client: { accessToken: string | null, state: string, fetch: (path: string) => Promise<{ status: number }> } } }

function clientState (page: Page): Promise<string> {
  return page.evaluate(() => (window as unknown as DemoWindow).demo.client.state)
}

t.test('two tabs whose tokens expire together both succeed, refreshing one at a time and never presenting a reused token', { skip: skipBrowser }, async t => {
  const context = await suite.browser.newContext()
  t.teardown(() => context.close())
  const wire = new Wire(context)
  const gate = await Gate.install(context, '/me')
  const first = await openDemo(context, suite.expiring.url)
  const email = newEmail()
  await signIn(first, email, true)
  const second = await openDemo(context, suite.expiring.url)
  t.equal(await second.textContent('#status'), `Signed in as ${email}`)
  // The second tab's silent refresh was broadcast: both tabs now hold one token.
  await first.waitForFunction(() => document.getElementById('log')?.textContent?.includes('(other-tab)'))
  const tabs = [first, second]
  const tokens = await Promise.all(tabs.map(page => page.evaluate(() => (window as unknown as DemoWindow).demo.client.accessToken)))
  t.equal(tokens[0], tokens[1], 'the tabs share the access token')

  for (let round = 1; round <= 3; round++) {
    // Both tabs click "who am I" at the same instant, just after the shared token expired,
    // so that their 401s race for the refresh. A deliberate wait on the clock (see
    // waitForExpiry), scheduled inside each page so that neither click waits for the other.
    const at = Math.max(await tokenExpiry(first), await tokenExpiry(second)) + 50
    const before = await Promise.all(tabs.map(page => doneCount(page, 'whoami')))
    // Both 401s, whatever the scheduler does: neither "who am I" is answered before both were sent.
    gate.holdNext(2)
    wire.reset()
    await Promise.all(tabs.map(async (page, i) => {
      await page.evaluate(at => { setTimeout(() => document.getElementById('whoami')!.click(), at - Date.now()) }, at)
      await waitForDone(page, 'whoami', before[i] + 1)
    }))
    t.comment(`round ${round}: ${wire.requests.join(', ')}`)
    t.same(await Promise.all(tabs.map(async page => (await page.textContent('#output'))?.slice(0, 4))), ['200 ', '200 '], 'both tabs got their answer')
    t.equal(wire.count('GET /me'), 4, 'both calls met the expired token and were retried once')
    // One refresh when the new token's broadcast reaches the waiting tab before the lock
    // does; a second, serialised one (presenting the rotated cookie) otherwise.
    const refreshes = wire.count('POST /auth/refresh')
    t.ok(refreshes >= 1 && refreshes <= 2, `one refresh, two serialised ones at worst (got ${refreshes})`)
    t.same(await wire.refreshErrors(), [], 'no refresh was refused, so no REFRESH_TOKEN_REUSED')
  }
  t.equal(wire.maxConcurrentRefreshes, 1, 'never two refreshes in flight at once')
  t.same(await Promise.all([clientState(first), clientState(second)]), ['authenticated', 'authenticated'])
})

t.test('logging out in one tab logs the other out, whose next call then stays logged out', { skip: skipBrowser }, async t => {
  const context = await suite.browser.newContext()
  t.teardown(() => context.close())
  const wire = new Wire(context)
  const first = await openDemo(context, suite.demo.url)
  await signIn(first, newEmail(), true)
  const second = await openDemo(context, suite.demo.url)
  t.equal(await second.getAttribute('body', 'data-state'), 'authenticated')
  // A client in the second tab that does not listen to the other tabs: only its next call can tell.
  await second.evaluate(async () => {
    const { createClient } = await import('/client.js' as string) as { createClient: (options: object) => { start: () => Promise<boolean>, on: (type: string, listener: (detail: unknown) => void) => void } }
    const isolated = createClient({ channel: null })
    const events: unknown[] = [];
    (window as unknown as { isolated: unknown, isolatedEvents: unknown[] }).isolated = isolated;
    (window as unknown as { isolatedEvents: unknown[] }).isolatedEvents = events
    isolated.on('logged-out', detail => events.push(detail))
    await isolated.start()
  })

  wire.reset()
  await act(first, 'logout')
  t.equal(await first.getAttribute('body', 'data-state'), 'logged-out')
  // The second tab learns it from the first one's broadcast: an event, not an answer to anything it did.
  await second.waitForSelector('body[data-state="logged-out"]', { state: 'attached' })
  t.match(await second.textContent('#log'), 'logged out: other-tab', 'the broadcast reached the other tab')

  const next = await second.evaluate(async () => (await (window as unknown as DemoWindow).demo.client.fetch('/me')).status)
  t.equal(next, 401, 'its next call goes out without a token')
  t.equal(await clientState(second), 'logged-out')

  const isolated = await second.evaluate(async () => {
    const w = window as unknown as { isolated: { fetch: (path: string) => Promise<{ status: number }>, state: string }, isolatedEvents: unknown[] }
    const status = (await w.isolated.fetch('/me')).status
    const again = (await w.isolated.fetch('/me')).status
    return { status, again, state: w.isolated.state, events: w.isolatedEvents }
  })
  t.same(isolated, { status: 401, again: 401, state: 'logged-out', events: [{ reason: 'refresh-failed', code: 'REFRESH_TOKEN_MISSING' }] },
    'without the channel, the next call finds the session over: one logged-out event, no loop')
  t.same(wire.requests, ['POST /auth/logout', 'GET /me', 'GET /me', 'POST /auth/refresh', 'GET /me'],
    'logout; the demo client calls once without a token; the isolated one refreshes once, then stops trying')
})

t.test('revoking a device from the session list logs that device out at its next call', { skip: skipBrowser }, async t => {
  const laptop = await suite.browser.newContext({ userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36 (laptop)' })
  const phone = await suite.browser.newContext({ userAgent: 'Mozilla/5.0 (Linux; Android 15; Pixel 9) Chrome/156.0.0.0 Mobile Safari/537.36 (phone)' })
  t.teardown(async () => { await laptop.close(); await phone.close() })
  const phoneWire = new Wire(phone)
  const email = newEmail()
  const phonePage = await openDemo(phone, suite.demo.url)
  await signIn(phonePage, email, true)
  const laptopPage = await openDemo(laptop, suite.demo.url)
  await signIn(laptopPage, email, false)
  t.equal(await laptopPage.locator('#sessions tr').count(), 2, 'the laptop lists both devices')
  await screenshot(laptopPage, 'demo.png')

  const phoneRow = laptopPage.locator('#sessions tr', { hasText: 'Pixel 9' })
  await act(laptopPage, 'revoke', phoneRow.locator('button.revoke'))
  t.equal(await laptopPage.locator('#sessions tr').count(), 1, 'the list was reloaded without the phone')
  t.match(await laptopPage.textContent('#sessions'), 'X11; Linux', 'the laptop keeps its own session')

  phoneWire.reset()
  await act(phonePage, 'whoami')
  t.equal(await phonePage.getAttribute('body', 'data-state'), 'logged-out')
  t.match(await phonePage.textContent('#log'), 'logged out: refresh-failed (REFRESH_TOKEN_INVALID)')
  t.same(phoneWire.requests, ['GET /me', 'POST /auth/refresh'], 'revoked token, one refresh refused, no retry and no loop')
  t.equal((await phonePage.locator('#log li', { hasText: 'logged out' }).count()), 1, 'exactly one logged-out event')

  await act(laptopPage, 'whoami')
  t.match(await laptopPage.textContent('#output'), /^200 /, 'the laptop still works')
})
