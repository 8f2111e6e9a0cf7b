// ky, set up exactly as docs/http-clients.md shows: the recipe is ./recipes/ky.ts itself,
// and in Node its fetch keeps cookies in a tough-cookie jar through fetch-cookie, as the
// docs' Node note says.
import t from 'tap'
import makeFetchCookie from 'fetch-cookie'
import { isHTTPError } from 'ky'
import { createAuthClient } from './recipes/ky.js'
import { clientSuite } from './suite.js'

clientSuite(t, {
  create (url, jar, onLoggedOut) {
    const auth = createAuthClient({ baseURL: url, fetch: makeFetchCookie(fetch, jar), onLoggedOut })
    return {
      login: auth.login,
      logout: auth.logout,
      refresh: auth.refresh,
      me: async () => await auth.api.get('/me').json(),
      get accessToken () { return auth.accessToken }
    }
  },
  outcome (error) {
    if (!isHTTPError(error)) return { status: 0, code: String(error) }
    const data = error.data as { code?: string } | undefined
    return { status: error.response.status, code: data?.code ?? null }
  }
})
