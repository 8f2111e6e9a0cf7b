// ofetch, set up exactly as docs/http-clients.md shows: the recipe is ./recipes/ofetch.ts
// itself, and in Node its fetch keeps cookies in a tough-cookie jar through fetch-cookie,
// as the docs' Node note says.
import t from 'tap'
import makeFetchCookie from 'fetch-cookie'
import { FetchError } from 'ofetch'
import { createAuthClient } from './recipes/ofetch.js'
import { clientSuite } from './suite.js'

clientSuite(t, {
  create (url, jar, onLoggedOut) {
    const auth = createAuthClient({ baseURL: url, fetch: makeFetchCookie(fetch, jar), onLoggedOut })
    return {
      login: auth.login,
      logout: auth.logout,
      refresh: auth.refresh,
      me: async () => await auth.api('/me'),
      get accessToken () { return auth.accessToken }
    }
  },
  outcome (error) {
    if (!(error instanceof FetchError)) return { status: 0, code: String(error) }
    return { status: error.status ?? 0, code: (error.data as { code?: string } | undefined)?.code ?? null }
  }
})
