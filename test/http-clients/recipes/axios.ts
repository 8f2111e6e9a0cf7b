import axios, { type AxiosError, type AxiosInstance, type CreateAxiosDefaults } from 'axios'
import { createAuthRefresh } from 'axios-auth-refresh'

/** Their 401s mean what they say (wrong password, session over): never a reason to refresh. */
const AUTH_ROUTE = /\/auth\/(login|refresh|logout)$/

interface ErrorBody { code?: string }

export interface AuthClientOptions {
  /** Where the API lives, e.g. `https://api.example.com`. */
  baseURL: string
  /** Creates each axios instance (in Node: one that keeps cookies). @default axios.create */
  create?: (config: CreateAxiosDefaults) => AxiosInstance
  /** Called once when the session ends, with `'logout'` or the refused refresh's code. */
  onLoggedOut?: (reason: string) => void
}

export interface AuthClient {
  /** The instance for the app's requests: it sends the token and refreshes it. */
  api: AxiosInstance
  login: (email: string, password: string) => Promise<void>
  logout: () => Promise<void>
  /** A new access token from the refresh cookie (e.g. on page load); null when the session is over. */
  refresh: () => Promise<string | null>
  readonly accessToken: string | null
}

export function createAuthClient ({ baseURL, create = axios.create, onLoggedOut = () => {} }: AuthClientOptions): AuthClient {
  // withCredentials: a browser sends the refresh cookie to an API on another origin.
  const api = create({ baseURL, withCredentials: true })
  // No interceptors: a 401 of refresh or logout can never start another refresh.
  const plain = create({ baseURL, withCredentials: true })
  let accessToken: string | null = null
  let refreshing: Promise<string | null> | null = null

  const bearer = (token: string | null): Record<string, string> => token === null ? {} : { Authorization: `Bearer ${token}` }

  function endSession (reason: string): void {
    if (accessToken === null) return
    accessToken = null
    onLoggedOut(reason)
  }

  /** One refresh at a time: every request that fails meanwhile waits for the same one. */
  function refresh (stale: string | null = accessToken): Promise<string | null> {
    // The request left with an older token: a refresh has already replaced it.
    if (accessToken !== stale) return Promise.resolve(accessToken)
    refreshing ??= plain.post<{ accessToken: string }>('/auth/refresh')
      .then(({ data }) => (accessToken = data.accessToken), (error: AxiosError<ErrorBody>) => {
        // 401: the refresh cookie is missing, expired, revoked or reused; the session is over.
        if (error.response?.status !== 401) throw error
        endSession(error.response.data?.code ?? 'REFRESH_REFUSED')
        return null
      })
      .finally(() => { refreshing = null })
    return refreshing
  }

  api.interceptors.request.use((config) => {
    if (accessToken !== null) config.headers.Authorization = `Bearer ${accessToken}`
    return config
  })

  // The cast is for the compiler only: with moduleResolution NodeNext, axios-auth-refresh's
  // typings load axios's CommonJS types, whose AxiosInstance is a different type.
  createAuthRefresh(api as Parameters<typeof createAuthRefresh>[0], async (failed: AxiosError) => {
    const sent = failed.config?.headers.Authorization
    // null: the session is over and the 401 stands.
    if (await refresh(typeof sent === 'string' ? sent.slice('Bearer '.length) : null) === null) throw failed
  }, {
    shouldRefresh: (error: AxiosError<ErrorBody>) => error.response?.status === 401 &&
      error.response.data?.code === 'TOKEN_EXPIRED' && !AUTH_ROUTE.test(error.config?.url ?? ''),
    // With the default (true) the other requests' 401s fail while a refresh runs
    // (Flyrell/axios-auth-refresh#307); concurrent failures share one refresh either way.
    deduplicateRefresh: false
  })

  async function login (email: string, password: string): Promise<void> {
    const { data } = await api.post<{ accessToken: string }>('/auth/login', { email, password })
    accessToken = data.accessToken
  }

  async function logout (): Promise<void> {
    await refreshing?.catch(() => null) // let a refresh under way land first
    const post = (token: string | null): Promise<unknown> => plain.post('/auth/logout', undefined, { headers: bearer(token) })
    try {
      await post(accessToken).catch(async (error: AxiosError<ErrorBody>) => {
        // Logout needs a live access token: renew an expired one, once, here.
        if (error.response?.data?.code !== 'TOKEN_EXPIRED') throw error
        const token = await refresh()
        if (token !== null) await post(token)
      })
    } catch (error) {
      // 401: the session was already over, which is what logging out wants.
      if (!axios.isAxiosError(error) || error.response?.status !== 401) throw error
    } finally {
      endSession('logout')
    }
  }

  return { api, login, logout, refresh: () => refresh(), get accessToken () { return accessToken } }
}
