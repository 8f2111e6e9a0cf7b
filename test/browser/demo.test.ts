import t from 'tap'
import { PASSWORD, Wire, act, doneCount, newEmail, openDemo, screenshot, signIn, skipBrowser, waitForDone, waitForExpiry, useBrowserSuite } from './setup.js'

const suite = useBrowserSuite(t)

t.test('after login the page cannot read the refresh cookie, and nothing is in web storage', { skip: skipBrowser }, async t => {
  const context = await suite.browser.newContext()
  t.teardown(() => context.close())
  const page = await openDemo(context, suite.demo.url)
  await signIn(page, newEmail(), true)

  const cookies = await context.cookies()
  const refresh = cookies.find(cookie => cookie.name === 'refresh_token')
  t.ok(refresh, 'the browser holds the refresh cookie')
  t.match(refresh, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' })
  t.equal(await page.evaluate(() => document.cookie), '', 'document.cookie does not show it')
  t.same(await page.evaluate(() => [localStorage.length, sessionStorage.length]), [0, 0])
  t.match(await page.evaluate(() => (window as unknown as { demo: { client: { accessToken: string } } }).demo.client.accessToken), /^ey/, 'the access token lives in memory')
})

t.test('once the access token has expired, "who am I" still succeeds with exactly one refresh on the wire', { skip: skipBrowser }, async t => {
  const context = await suite.browser.newContext()
  t.teardown(() => context.close())
  const wire = new Wire(context)
  const page = await openDemo(context, suite.expiring.url)
  const email = newEmail()
  await signIn(page, email, true)
  t.equal(wire.count('POST /auth/refresh'), 1, 'one refresh on page load, before login (no cookie yet)')

  await waitForExpiry(page)
  wire.reset()
  const started = Date.now()
  // Waits for this click's "who am I" to finish: the sign-in already wrote a "200" to #output.
  await act(page, 'whoami')
  t.comment(`expired "who am I" answered in ${Date.now() - started} ms: ${wire.requests.join(', ')}`)

  t.match(await page.textContent('#output'), /^200 /)
  t.match(await page.textContent('#output'), email)
  t.same(wire.requests, ['GET /me', 'POST /auth/refresh', 'GET /me'], 'a 401, one refresh, one retry')
  t.same(await wire.refreshErrors(), [], 'the refresh was accepted')
  await screenshot(page, 'demo-after-refresh.png')
})

t.test('reloading the page keeps the user signed in through the silent refresh', { skip: skipBrowser }, async t => {
  const context = await suite.browser.newContext()
  t.teardown(() => context.close())
  const wire = new Wire(context)
  const page = await openDemo(context, suite.demo.url)
  const email = newEmail()
  await signIn(page, email, true)
  const before = await page.evaluate(() => (window as unknown as { demo: { client: { accessToken: string } } }).demo.client.accessToken)

  wire.reset()
  // The reloaded document sets data-ready once its silent refresh, "who am I" and session list have answered.
  await page.reload()
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
  t.equal(await page.textContent('#status'), `Signed in as ${email}`)

  t.equal(wire.count('POST /auth/refresh'), 1, 'one silent refresh')
  t.equal(await page.getAttribute('body', 'data-state'), 'authenticated')
  const after = await page.evaluate(() => (window as unknown as { demo: { client: { accessToken: string } } }).demo.client.accessToken)
  t.not(after, before, 'a new access token, from the cookie')
  t.equal(await page.locator('#sessions tr').count(), 1, 'the reload did not start a new session')
})

t.test('a wrong password shows the error code and starts no session', { skip: skipBrowser }, async t => {
  const context = await suite.browser.newContext()
  t.teardown(() => context.close())
  const page = await openDemo(context, suite.demo.url)
  const email = newEmail()
  await signIn(page, email, true)
  await act(page, 'logout')
  t.equal(await page.getAttribute('body', 'data-state'), 'logged-out')
  await page.fill('#email', email)
  await page.fill('#password', `${PASSWORD}!`)
  await act(page, 'login')
  t.equal(await page.textContent('#form-error'), '401 INVALID_CREDENTIALS')
  t.equal(await page.getAttribute('body', 'data-state'), 'logged-out')
  t.notOk((await context.cookies()).some(cookie => cookie.name === 'refresh_token'), 'logout cleared the cookie')
})

t.test('a login while the page-load refresh is still in flight keeps the new session at the next refresh', { skip: skipBrowser }, async t => {
  const context = await suite.browser.newContext()
  t.teardown(() => context.close())
  const alice = newEmail()
  const bob = newEmail()
  const page = await openDemo(context, suite.demo.url)
  await signIn(page, bob, true)
  await act(page, 'logout')
  await signIn(page, alice, true)

  // On reload the page refreshes with Alice's cookie. The server answers it, but the
  // answer (and its Set-Cookie) reaches the browser only after Bob has logged in.
  let answered!: () => void
  const refreshedOnServer = new Promise<void>(resolve => { answered = resolve })
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  // Without `times`: a route that expires turns interception off while the page is busy.
  let held = false
  await context.route(url => url.pathname === '/auth/refresh', async route => {
    if (held) return await route.continue()
    held = true
    const response = await route.fetch()
    answered()
    await released
    await route.fulfill({ response })
  })
  await page.reload({ waitUntil: 'commit' })
  await refreshedOnServer
  await page.fill('#email', bob)
  await page.fill('#password', PASSWORD)
  // Bob's login waits for the refresh on the wire: its late Set-Cookie must not land over Bob's.
  const logins = await doneCount(page, 'login')
  await page.click('#login')
  release()
  await waitForDone(page, 'login', logins + 1)
  t.match(await page.textContent('#output'), bob, 'signed in as Bob')
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })

  await act(page, 'refresh')
  await act(page, 'whoami')
  t.match(await page.textContent('#output'), bob, 'still Bob after the next refresh')
})
