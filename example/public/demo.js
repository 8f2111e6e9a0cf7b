// The demo page's script: everything authenticated goes through the client.
import { createClient, RevocableJwtClientError } from '/client.js'

const client = createClient()
// For the browser tests and for poking around in the console.
window.demo = { client }

const $ = id => document.getElementById(id)
let tokenLifetime = 0
let signedInAs = null

function log (text) {
  const item = document.createElement('li')
  const time = document.createElement('time')
  time.textContent = new Date().toLocaleTimeString()
  item.append(time, text)
  $('log').prepend(item)
}

function render () {
  document.body.dataset.state = client.state
  $('status').textContent = client.state === 'authenticated'
    ? `Signed in${signedInAs === null ? '' : ` as ${signedInAs}`}`
    : 'Not signed in'
  const left = client.timeLeft()
  document.body.dataset.token = left === null ? 'none' : left > 0 ? 'valid' : 'expired'
  if (left === null) {
    $('lifetime').textContent = 'no token'
    $('lifetime-bar').style.width = '0'
  } else {
    $('lifetime').textContent = left > 0 ? `${(left / 1000).toFixed(1)} s left` : 'expired'
    $('lifetime-bar').style.width = `${tokenLifetime > 0 ? Math.min(100, 100 * left / tokenLifetime) : 0}%`
  }
}

// Each user action counts its completions on <body>: data-done-<action>="N" is set once
// the action's last request has been answered and the page shows the outcome. Whoever
// drives the page (the browser tests) reads the count, clicks, and waits for the count
// to go up: a text such as "200" may still be on the page from an earlier action.
const completed = new Map()

async function act (action, work) {
  try {
    await work()
  } finally {
    render()
    const count = (completed.get(action) ?? 0) + 1
    completed.set(action, count)
    document.body.setAttribute(`data-done-${action}`, String(count))
  }
}

function show (text) {
  $('output').textContent = text
}

function describe (err) {
  return err instanceof RevocableJwtClientError ? `${err.status} ${err.code ?? ''}`.trim() : String(err)
}

async function whoAmI () {
  const res = await client.fetch('/me')
  const body = await res.json()
  if (res.ok) signedInAs = body.email
  show(res.ok ? `200 ${JSON.stringify(body)}` : `${res.status} ${body.code}`)
  render()
}

function shortDevice (userAgent) {
  if (userAgent === null) return 'unknown device'
  const browser = /(Firefox|Edg|Chrome|Safari)\/\d+/.exec(userAgent)?.[0]
  const platform = /\(([^)]*)\)/.exec(userAgent)?.[1]
  return [browser, platform].filter(Boolean).join(' · ') || userAgent
}

async function loadSessions () {
  let sessions
  try {
    sessions = await client.listSessions()
  } catch (err) {
    log(`could not list sessions: ${describe(err)}`)
    return
  }
  const rows = sessions.map(session => {
    const row = document.createElement('tr')
    row.dataset.sessionId = session.id
    const device = document.createElement('td')
    device.className = 'device'
    device.title = session.userAgent ?? ''
    device.textContent = shortDevice(session.userAgent)
    if (session.current) {
      const badge = document.createElement('span')
      badge.className = 'badge'
      badge.textContent = 'this device'
      device.prepend(badge)
    }
    const created = document.createElement('td')
    created.textContent = new Date(session.createdAt).toLocaleTimeString()
    const used = document.createElement('td')
    used.textContent = new Date(session.lastUsedAt).toLocaleTimeString()
    const action = document.createElement('td')
    const revoke = document.createElement('button')
    revoke.type = 'button'
    revoke.className = 'danger revoke'
    revoke.textContent = 'Revoke'
    revoke.addEventListener('click', () => act('revoke', async () => {
      await client.revokeSession(session.id)
        .then(() => log(`revoked session ${session.id.slice(0, 8)}…`), err => log(`revoke failed: ${describe(err)}`))
      if (client.state === 'authenticated') await loadSessions()
    }))
    action.append(revoke)
    row.append(device, created, used, action)
    return row
  })
  $('sessions').replaceChildren(...rows)
}

async function signIn (register) {
  $('form-error').textContent = ''
  const credentials = { email: $('email').value, password: $('password').value }
  try {
    if (register) {
      const res = await fetch('/auth/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(credentials)
      })
      if (!res.ok) throw new RevocableJwtClientError(res.status, (await res.json()).code, 'register failed')
      log(`registered ${credentials.email}`)
    }
    await client.login(credentials)
    signedInAs = credentials.email
    $('password').value = ''
    await Promise.all([whoAmI(), loadSessions()])
  } catch (err) {
    $('form-error').textContent = describe(err)
  }
}

client.on('token', ({ expiresAt, source }) => {
  tokenLifetime = expiresAt === null ? 0 : expiresAt - Date.now()
  log(`new access token (${source}), valid ${(tokenLifetime / 1000).toFixed(1)} s`)
  render()
})
client.on('logged-out', ({ reason, code }) => {
  signedInAs = null
  $('sessions').replaceChildren()
  show('')
  log(code === 'REFRESH_TOKEN_MISSING' && reason === 'refresh-failed'
    ? 'no session cookie: sign in'
    : `logged out: ${reason}${code === null ? '' : ` (${code})`}`)
  render()
})

$('credentials').addEventListener('submit', event => {
  event.preventDefault()
  act('login', () => signIn(false))
})
$('register').addEventListener('click', () => {
  if ($('credentials').reportValidity()) act('register', () => signIn(true))
})
$('whoami').addEventListener('click', () => act('whoami', () => whoAmI().catch(err => show(describe(err)))))
$('refresh').addEventListener('click', () => act('refresh', () => client.refresh().catch(err => log(`refresh failed: ${describe(err)}`))))
$('logout').addEventListener('click', () => act('logout', () => client.logout().catch(err => log(`logout: ${describe(err)}`))))
$('logout-all').addEventListener('click', () => act('logout-all', () => client.logoutAll().catch(err => log(`logout everywhere: ${describe(err)}`))))
$('reload-sessions').addEventListener('click', () => act('reload-sessions', loadSessions))

setInterval(render, 200)
render()
try {
  if (await client.start()) {
    await Promise.all([whoAmI(), loadSessions()])
  }
} finally {
  // Set even when the first "who am I" failed, so that a test reports that failure
  // instead of timing out waiting for the page.
  render()
  document.body.dataset.ready = 'true'
}
