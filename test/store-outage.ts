// The store server goes away in the middle of traffic and comes back: the example
// (every store on that server) refuses with 503, lets nothing through, and recovers
// without a restart, with what was revoked before still revoked. Run per store by
// redis-failure.test.ts and postgres-failure.test.ts.
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { bearer, build, refreshCookie, registerAndLogin, type Session } from './helper.js'

export interface OutageStore {
  /** What the example's environment names the store by. */
  env: Record<string, string>
  server: { stop: (signal: NodeJS.Signals) => Promise<void>, restart: () => Promise<void> }
  /** Every answer within this many ms, when given. */
  boundMs?: number
}

async function timed (run: () => Promise<LightMyRequestResponse>): Promise<{ res: LightMyRequestResponse, ms: number }> {
  const started = performance.now()
  const res = await run()
  return { res, ms: performance.now() - started }
}

function me (app: FastifyInstance, session: Session): Promise<LightMyRequestResponse> {
  return app.inject({ url: '/me', headers: bearer(session.accessToken) })
}

function refresh (app: FastifyInstance, token: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: token } })
}

export function storeOutageContract (name: string, store: OutageStore): void {
  t.test(`${name} outage answers 503 AUTH_STORE_UNAVAILABLE, and the app recovers when the server is back`, async (t) => {
    const app = await build({ env: { ...store.env, COOKIE_SECURE: 'false' } })
    t.teardown(() => app.close())

    const alive = await registerAndLogin(app)
    const loggedOut = await registerAndLogin(app)
    const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(loggedOut.accessToken), cookies: { refresh_token: loggedOut.refreshToken } })
    t.equal(logout.statusCode, 204)
    t.equal((await me(app, alive)).statusCode, 200)
    t.equal((await me(app, loggedOut)).json().code, 'TOKEN_REVOKED')

    // Traffic with a valid and a revoked token; the store server is killed while it runs.
    const seen: Array<{ status: number, code: string | undefined, ms: number, revoked: boolean }> = []
    let running = true
    let afterKill = 0
    let killed = false
    const traffic = (async () => {
      while (running) {
        const [valid, revoked] = await Promise.all([timed(() => me(app, alive)), timed(() => me(app, loggedOut))])
        for (const [{ res, ms }, isRevoked] of [[valid, false], [revoked, true]] as const) {
          seen.push({ status: res.statusCode, code: res.json().code, ms, revoked: isRevoked })
        }
        if (killed && ++afterKill >= 20) running = false
      }
    })()
    while (seen.length < 20) await new Promise(resolve => setImmediate(resolve))
    await store.server.stop('SIGKILL')
    killed = true
    await traffic

    t.ok(seen.some(r => r.status === 200), 'requests succeeded before the outage')
    t.ok(seen.filter(r => r.status === 503).length >= 20, 'and were refused during it')
    for (const r of seen) {
      if (r.revoked) {
        t.not(r.status, 200, 'the revoked token is never let through')
        t.ok(r.code === 'TOKEN_REVOKED' || r.code === 'AUTH_STORE_UNAVAILABLE', `revoked token: ${r.status} ${r.code}`)
      } else {
        t.ok(r.status === 200 || (r.status === 503 && r.code === 'AUTH_STORE_UNAVAILABLE'), `valid token: ${r.status} ${r.code}`)
      }
      if (store.boundMs !== undefined) t.ok(r.ms < store.boundMs, `answered in ${Math.round(r.ms)} ms`)
    }

    // Every kind of request is refused while the server is down, none hangs.
    const outage = {
      protected: await timed(() => me(app, alive)),
      login: await timed(() => app.inject({ method: 'POST', url: '/auth/login', payload: { email: alive.email, password: 'correct horse battery' } })),
      refresh: await timed(() => refresh(app, alive.refreshToken)),
      register: await timed(() => app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'new@example.com', password: 'correct horse battery' } })),
      logoutAll: await timed(() => app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(alive.accessToken) }))
    }
    for (const [name, { res, ms }] of Object.entries(outage)) {
      t.equal(res.statusCode, 503, `${name} during the outage`)
      t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE', `${name} code`)
      if (store.boundMs !== undefined) t.ok(ms < store.boundMs, `${name} answered in ${Math.round(ms)} ms`)
    }
    t.notOk(refreshCookie(outage.login.res), 'no refresh cookie is set by a refused login')

    await store.server.restart()
    // A client reconnects on its own schedule (Redis: at most 1 s apart): poll until it has.
    const deadline = Date.now() + 15_000
    let recovered = await me(app, alive)
    while (recovered.statusCode !== 200 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 100))
      recovered = await me(app, alive)
    }
    t.equal(recovered.statusCode, 200, 'the same app serves again once the server is back')

    const revoked = await me(app, loggedOut)
    t.equal(revoked.statusCode, 401, 'what was revoked before the outage is still revoked')
    t.equal(revoked.json().code, 'TOKEN_REVOKED')
    const oldRefresh = await refresh(app, loggedOut.refreshToken)
    t.equal(oldRefresh.statusCode, 401)
    t.equal(oldRefresh.json().code, 'REFRESH_TOKEN_INVALID')
    const rotated = await refresh(app, alive.refreshToken)
    t.equal(rotated.statusCode, 200, 'refresh tokens stored before the outage still work')
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: alive.email, password: 'correct horse battery' } })
    t.equal(login.statusCode, 200, 'users stored before the outage can log in')
  })
}
