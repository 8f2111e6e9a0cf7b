// axios + axios-auth-refresh, set up exactly as docs/http-clients.md shows: the recipe is
// ./recipes/axios.ts itself, and in Node every instance keeps its cookies in one
// tough-cookie jar through axios-cookiejar-support, as the docs' Node note says.
import { createRequire } from 'node:module'
import t from 'tap'
import axios from 'axios'
import { wrapper } from 'axios-cookiejar-support'
import { clientSuite } from './suite.js'

// tap's TypeScript loader (ts-node) loads axios-auth-refresh's ESM build, a .js file in a
// CommonJS package, as CommonJS and fails; plain Node and bundlers load it fine. So the
// recipe gets the package's CommonJS build, the same code, here.
const { createAuthClient } = await t.mockImport<typeof import('./recipes/axios.js')>('./recipes/axios.js', {
  'axios-auth-refresh': { ...createRequire(import.meta.url)('axios-auth-refresh') }
})

clientSuite(t, {
  create (url, jar, onLoggedOut) {
    const auth = createAuthClient({ baseURL: url, create: config => wrapper(axios.create({ ...config, jar })), onLoggedOut })
    return {
      login: auth.login,
      logout: auth.logout,
      refresh: auth.refresh,
      me: async () => (await auth.api.get('/me')).data,
      get accessToken () { return auth.accessToken }
    }
  },
  outcome (error) {
    if (!axios.isAxiosError<{ code?: string }>(error)) return { status: 0, code: String(error) }
    return { status: error.response?.status ?? 0, code: error.response?.data?.code ?? error.code ?? null }
  }
})
