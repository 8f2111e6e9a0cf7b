import { checkOptionNames } from '../options.js'
import type { ResolvedRefreshCookie } from './refresh-cookie.js'

/** Options of one cookie of the cookie transport (the access cookie or the refresh cookie). */
export interface PageCookieOptions {
  /**
   * The cookie name.
   * @default 'page_access_token' (access) / 'page_refresh_token' (refresh)
   */
  name?: string
  /**
   * The cookie's `Path`: the page routes it must reach (the refresh cookie is read by
   * every page whose access cookie has expired).
   * @default the plugin's `path`
   */
  path?: string
  /**
   * The `SameSite` attribute. `lax` sends the cookie on a top-level navigation from
   * another site (a link in an email opens the page signed in) but never on another
   * site's form post, image or fetch; `strict` keeps it off those navigations too (such
   * a link lands on the login page). Unsafe methods are refused cross-site either way.
   * @default 'lax'
   */
  sameSite?: 'lax' | 'strict'
  /**
   * Send the cookie only over HTTPS (browsers also accept `Secure` cookies from
   * `http://localhost`).
   * @default the `cookie.secure` of the refresh routes' cookie (issuance), itself `true` by default
   */
  secure?: boolean
  /**
   * The `Domain` attribute; leave unset to bind the cookie to the exact host.
   * @default undefined
   */
  domain?: string
}

const NAMES = ['name', 'path', 'sameSite', 'secure', 'domain'] as const
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const PATH = /^\/[A-Za-z0-9._~\-/]*$/

/** One cookie's options, checked (each error names `option.field`) and completed with the defaults. */
export function resolvePageCookie (
  given: PageCookieOptions | undefined,
  option: string,
  defaults: { name: string, path: string, secure: boolean },
  maxAgeSeconds: number
): ResolvedRefreshCookie {
  const cookie = given ?? {}
  checkOptionNames(cookie, NAMES, `revocableJwtCookieSession: ${option}`)
  const name = cookie.name ?? defaults.name
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) throw new TypeError(`${option}.name must be a valid cookie name, got ${JSON.stringify(cookie.name)}`)
  const path = cookie.path ?? defaults.path
  if (typeof path !== 'string' || !PATH.test(path)) throw new TypeError(`${option}.path must be a path like "/app", got ${JSON.stringify(cookie.path)}`)
  const sameSite = cookie.sameSite ?? 'lax'
  if (sameSite !== 'lax' && sameSite !== 'strict') throw new TypeError(`${option}.sameSite must be "lax" or "strict", got ${JSON.stringify(cookie.sameSite)}`)
  const secure = cookie.secure ?? defaults.secure
  if (typeof secure !== 'boolean') throw new TypeError(`${option}.secure must be a boolean`)
  if (cookie.domain !== undefined && (typeof cookie.domain !== 'string' || cookie.domain.length === 0)) throw new TypeError(`${option}.domain must be a non-empty string`)
  if (name.startsWith('__Secure-') && !secure) throw new TypeError(`${option}.name starts with __Secure-, which browsers accept only with ${option}.secure: true`)
  if (name.startsWith('__Host-') && (!secure || path !== '/' || cookie.domain !== undefined)) {
    throw new TypeError(`${option}.name starts with __Host-, which browsers accept only with ${option}.secure: true, ${option}.path "/" and no ${option}.domain`)
  }
  return { name, secure, domain: cookie.domain, path, sameSite, maxAgeSeconds }
}
