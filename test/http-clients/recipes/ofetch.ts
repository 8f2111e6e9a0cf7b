import { FetchError, ofetch, type $Fetch } from 'ofetch'

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
  api: $Fetch
  login: (email: string, password: string) => Promise<void>
  logout: () => Promise<void>
  /** A new access token from the refresh cookie (e.g. on page load); null when the session is over. */
  refresh: () => Promise<string | null>
  readonly accessToken: string | null
}

export function createAuthClient ({ baseURL, fetch, onLoggedOut = () => {} }: AuthClientOptions): AuthClient {
  // credentials: a browser sends the refresh cookie to an API on another origin.
  // No hooks: a 401 of refresh or logout can never start another refresh.
  const plain = ofetch.create({ baseURL, credentials: 'include', retry: 0 }, { fetch })
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
    refreshing ??= plain<{ accessToken: string }>('/auth/refresh', { method: 'POST' })
      .then((body) => (accessToken = body.accessToken), (error: unknown) => {
        // 401: the refresh cookie is missing, expired, revoked or reused; the session is over.
        if (!(error instanceof FetchError) || error.status !== 401) throw error
        endSession(String(error.data?.code ?? 'REFRESH_REFUSED'))
        return null
      })
      .finally(() => { refreshing = null })
    return refreshing
  }

  const api = ofetch.create({
    baseURL,
    credentials: 'include',
    onRequest ({ options }) {
      if (accessToken !== null) options.headers.set('authorization', `Bearer ${accessToken}`)
    },
    async onResponseError ({ request, response, options }) {
      // Once per request (the retry below carries retryStatusCodes [401]), only for an
      // expired access token, never for the auth routes.
      if (options.retryStatusCodes?.includes(401) === true || response.status !== 401 || response._data?.code !== 'TOKEN_EXPIRED') return
      if (AUTH_ROUTE.test(new URL(typeof request === 'string' ? request : request.url, baseURL).pathname)) return
      const token = await refresh(options.headers.get('authorization')?.slice('Bearer '.length) ?? null)
      if (token === null) return // the session is over: the 401 stands
      // Retry this request once, at once: onRequest puts the new token on it. Only here,
      // so a wrong password or a 401 after logout is never sent twice.
      Object.assign(options, { retry: 1, retryDelay: 0, retryStatusCodes: [401] })
    }
  }, { fetch })

  async function login (email: string, password: string): Promise<void> {
    accessToken = (await api<{ accessToken: string }>('/auth/login', { method: 'POST', body: { email, password } })).accessToken
  }

  async function logout (): Promise<void> {
    await refreshing?.catch(() => null) // let a refresh under way land first
    const post = (token: string | null): Promise<unknown> => plain('/auth/logout', { method: 'POST', headers: bearer(token) })
    try {
      await post(accessToken).catch(async (error: unknown) => {
        // Logout needs a live access token: renew an expired one, once, here.
        if (!(error instanceof FetchError) || error.data?.code !== 'TOKEN_EXPIRED') throw error
        const token = await refresh()
        if (token !== null) await post(token)
      })
    } catch (error) {
      // 401: the session was already over, which is what logging out wants.
      if (!(error instanceof FetchError) || error.status !== 401) throw error
    } finally {
      endSession('logout')
    }
  }

  return { api, login, logout, refresh: () => refresh(), get accessToken () { return accessToken } }
}
