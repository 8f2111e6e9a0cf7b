import ky, { isHTTPError, type KyInstance } from 'ky'

/** Their 401s mean what they say (wrong password, session over): never a reason to refresh. */
const AUTH_ROUTE = /\/auth\/(login|refresh|logout)$/

export interface AuthClientOptions {
  /** Where the API lives, e.g. `https://api.example.com`. */
  baseURL: string
  /** The `fetch` to use (in Node: one that keeps cookies). @default globalThis.fetch */
  fetch?: typeof globalThis.fetch
  /** Called once when the session ends, with `'logout'` or the refused refresh's code. */
  onLoggedOut?: (reason: string) => void
}

export interface AuthClient {
  /** The instance for the app's requests: it sends the token and refreshes it. */
  api: KyInstance
  login: (email: string, password: string) => Promise<void>
  logout: () => Promise<void>
  /** A new access token from the refresh cookie (e.g. on page load); null when the session is over. */
  refresh: () => Promise<string | null>
  readonly accessToken: string | null
}

const codeOf = (data: unknown): unknown => typeof data === 'object' && data !== null && 'code' in data ? data.code : undefined

export function createAuthClient ({ baseURL, fetch, onLoggedOut = () => {} }: AuthClientOptions): AuthClient {
  // prefix: '/me' goes below baseURL; credentials: a browser sends the refresh cookie to an API on another origin.
  const defaults = { prefix: baseURL, fetch, credentials: 'include' } as const
  // No hooks: a 401 of refresh or logout can never start another refresh.
  const plain = ky.create({ ...defaults, retry: 0 })
  let accessToken: string | null = null
  let refreshing: Promise<string | null> | null = null

  const bearer = (token: string | null): Record<string, string> => token === null ? {} : { authorization: `Bearer ${token}` }

  function endSession (reason: string): void {
    if (accessToken === null) return
    accessToken = null
    onLoggedOut(reason)
  }

  /** One refresh at a time: every request that fails meanwhile waits for the same one. */
  function refresh (stale: string | null = accessToken): Promise<string | null> {
    // The request left with an older token: a refresh has already replaced it.
    if (accessToken !== stale) return Promise.resolve(accessToken)
    refreshing ??= plain.post('/auth/refresh').json<{ accessToken: string }>()
      .then((body) => (accessToken = body.accessToken), (error: unknown) => {
        // 401: the refresh cookie is missing, expired, revoked or reused; the session is over.
        if (!isHTTPError(error) || error.response.status !== 401) throw error
        endSession(String(codeOf(error.data) ?? 'REFRESH_REFUSED'))
        return null
      })
      .finally(() => { refreshing = null })
    return refreshing
  }

  const api = ky.create({
    ...defaults,
    hooks: {
      beforeRequest: [({ request }) => {
        if (accessToken !== null) request.headers.set('authorization', `Bearer ${accessToken}`)
      }],
      afterResponse: [async ({ request, response, retryCount }) => {
        // Once per request, only for an expired access token, never for the auth routes.
        if (retryCount > 0 || response.status !== 401 || AUTH_ROUTE.test(new URL(request.url).pathname)) return
        if (codeOf(await response.json().catch(() => null)) !== 'TOKEN_EXPIRED') return
        const token = await refresh(request.headers.get('authorization')?.slice('Bearer '.length) ?? null)
        if (token === null) return // the session is over: the 401 stands
        const headers = new Headers(request.headers)
        headers.set('authorization', `Bearer ${token}`)
        // delay: 0, or ky waits 300 ms before the retry.
        return ky.retry({ request: new Request(request, { headers }), delay: 0, code: 'TOKEN_REFRESHED' })
      }]
    }
  })

  async function login (email: string, password: string): Promise<void> {
    accessToken = (await api.post('/auth/login', { json: { email, password } }).json<{ accessToken: string }>()).accessToken
  }

  async function logout (): Promise<void> {
    await refreshing?.catch(() => null) // let a refresh under way land first
    const post = (token: string | null): Promise<unknown> => plain.post('/auth/logout', { headers: bearer(token) })
    try {
      await post(accessToken).catch(async (error: unknown) => {
        // Logout needs a live access token: renew an expired one, once, here.
        if (!isHTTPError(error) || codeOf(error.data) !== 'TOKEN_EXPIRED') throw error
        const token = await refresh()
        if (token !== null) await post(token)
      })
    } catch (error) {
      // 401: the session was already over, which is what logging out wants.
      if (!isHTTPError(error) || error.response.status !== 401) throw error
    } finally {
      endSession('logout')
    }
  }

  return { api, login, logout, refresh: () => refresh(), get accessToken () { return accessToken } }
}
