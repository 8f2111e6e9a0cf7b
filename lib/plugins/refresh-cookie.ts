import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { parseRefreshToken } from '../domain/refresh-tokens.js'
import { RefreshTokenInvalidError } from '../errors.js'
import { DEFAULT_COOKIE_NAME, DEFAULT_PREFIX } from '../options.js'

/** Options of the refresh cookie. */
export interface RefreshCookieOptions {
  /**
   * The cookie name.
   * @default 'refresh_token'
   */
  name?: string
  /**
   * Send the cookie only over HTTPS. Browsers accept `Secure` cookies from
   * `http://localhost`; turn this off only for other plain-http development hosts
   * (a Node cookie jar also drops them over plain http to any other host).
   * @default true
   */
  secure?: boolean
  /**
   * The cookie's `Domain` attribute; leave unset to bind it to the exact host (safer:
   * sibling subdomains then cannot receive it).
   * @default undefined
   */
  domain?: string
  /**
   * The cookie's `Path`: where the browser sends it. Set it when a gateway serves the
   * refresh routes under another path than the app mounts them (it strips `/api`, say).
   * @default the `prefix` of the refresh routes
   */
  path?: string
  /**
   * The `SameSite` attribute. `strict` keeps the cookie off every request another site
   * starts; `lax` also sends it on top-level navigations from other sites.
   * @default 'strict'
   */
  sameSite?: 'strict' | 'lax'
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const PATH = /^\/[A-Za-z0-9._~\-/]*$/

export interface ResolvedRefreshCookie {
  name: string
  secure: boolean
  domain: string | undefined
  path: string
  sameSite: 'strict' | 'lax'
  maxAgeSeconds: number
}

export function resolveRefreshCookieOptions (cookie: RefreshCookieOptions | undefined, prefix: string, refreshTokenTtlMs: number): ResolvedRefreshCookie {
  const given = cookie ?? {}
  if (given === null || typeof given !== 'object') throw new TypeError('cookie must be an object')
  const name = given.name ?? DEFAULT_COOKIE_NAME
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) throw new TypeError('cookie.name must be a valid cookie name')
  if (given.secure !== undefined && typeof given.secure !== 'boolean') throw new TypeError('cookie.secure must be a boolean')
  if (given.domain !== undefined && (typeof given.domain !== 'string' || given.domain.length === 0)) throw new TypeError('cookie.domain must be a non-empty string')
  const path = given.path ?? (prefix === '' ? '/' : prefix)
  if (typeof path !== 'string' || !PATH.test(path)) throw new TypeError(`cookie.path must be a path like "/auth", got ${JSON.stringify(given.path)}`)
  const sameSite = given.sameSite ?? 'strict'
  if (sameSite !== 'strict' && sameSite !== 'lax') throw new TypeError(`cookie.sameSite must be "strict" or "lax", got ${JSON.stringify(given.sameSite)}`)
  const secure = given.secure ?? true
  if (name.startsWith('__Secure-') && !secure) throw new TypeError('cookie.name starts with __Secure-, which browsers accept only with cookie.secure: true')
  if (name.startsWith('__Host-') && (!secure || path !== '/' || given.domain !== undefined)) {
    throw new TypeError('cookie.name starts with __Host-, which browsers accept only with cookie.secure: true, cookie.path "/" and no cookie.domain')
  }
  return { name, secure, domain: given.domain, path, sameSite, maxAgeSeconds: Math.floor(refreshTokenTtlMs / 1000) }
}

export function checkPrefix (prefix: unknown): string {
  const value = prefix ?? DEFAULT_PREFIX
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(value) || (value.length > 1 && value.endsWith('/'))) {
    throw new TypeError(`prefix must be a path like "/auth" (leading slash, no trailing slash), got ${JSON.stringify(prefix)}`)
  }
  return value === '/' ? '' : value
}

/** What a request presents as its refresh cookie. */
export type PresentedRefreshCookie =
  | { kind: 'missing' }
  | { kind: 'one', value: string }
  /** Several different values under the name: one may have been planted by a sibling subdomain. */
  | { kind: 'conflict', values: string[] }

/**
 * The refresh cookie: set on login and refresh, cleared on logout, read on refresh.
 * HttpOnly always; only its hash is ever stored.
 */
export class RefreshCookie {
  readonly settings: ResolvedRefreshCookie
  /** Where the routes that read the cookie are mounted (`''` for the root). */
  readonly prefix: string
  readonly #attributes: { path: string, httpOnly: true, sameSite: 'strict' | 'lax', secure: boolean, domain?: string }
  readonly #parse: (header: string) => Record<string, string | undefined>

  constructor (settings: ResolvedRefreshCookie, prefix: string, fastify: FastifyInstance) {
    this.settings = settings
    this.prefix = prefix
    this.#attributes = {
      path: settings.path,
      httpOnly: true,
      sameSite: settings.sameSite,
      secure: settings.secure,
      ...(settings.domain !== undefined && { domain: settings.domain })
    }
    this.#parse = (header) => fastify.parseCookie(header)
  }

  set (reply: FastifyReply, token: string): void {
    reply.setCookie(this.settings.name, token, { ...this.#attributes, maxAge: this.settings.maxAgeSeconds })
  }

  clear (reply: FastifyReply): void {
    reply.clearCookie(this.settings.name, this.#attributes)
  }

  /**
   * Every value the request carries under the cookie's name. A browser sends one cookie
   * per (domain, path), so a second value means another domain or path set one: a
   * sibling subdomain can plant a cookie for the parent domain ("cookie tossing").
   */
  read (request: FastifyRequest): PresentedRefreshCookie {
    const header = request.headers.cookie
    const first = request.cookies[this.settings.name]
    if (first === undefined || first === '' || header === undefined) return { kind: 'missing' }
    const values = new Set<string>()
    // The pairs of a Cookie header are separated by ';' (RFC 6265 §4.2.1); each pair is
    // parsed by @fastify/cookie's own parser, which keeps only the first of a name.
    for (const pair of header.split(';')) {
      const value = this.#parse(pair)[this.settings.name]
      if (value !== undefined && value !== '') values.add(value)
    }
    return values.size <= 1 ? { kind: 'one', value: first } : { kind: 'conflict', values: [...values] }
  }

  /**
   * The refresh token the request presents, or null when it carries none. With several
   * values under the name (one planted for a parent domain or another path: `planted`),
   * the planted copies are expired, the app's own never cleared, and the one well-formed
   * token taken: never one of two well-formed tokens, which would let a planted one
   * switch accounts.
   */
  presentedRefreshToken (request: FastifyRequest, reply: FastifyReply): { token: string, planted: boolean } | null {
    const presented = this.read(request)
    if (presented.kind === 'missing') return null
    if (presented.kind === 'one') return { token: presented.value, planted: false }
    this.expirePlanted(request, reply)
    const wellFormed = presented.values.filter(value => parseRefreshToken(value) !== null)
    if (wellFormed.length !== 1) throw new RefreshTokenInvalidError()
    return { token: wellFormed[0], planted: true }
  }

  /**
   * Expire copies of the cookie that another host could have planted: those for each
   * parent domain of the request's host, on each path that reaches this route. The
   * app's own cookie (its host, or its configured domain and path) is left alone.
   */
  expirePlanted (request: FastifyRequest, reply: FastifyReply): void {
    const labels = request.hostname.split('.')
    if (labels.length < 3 || /^[\d.]+$/.test(request.hostname) || request.hostname.includes(':')) return
    const paths = new Set(['/'])
    let path = ''
    for (const segment of request.url.split('?')[0].split('/').slice(1)) {
      path = `${path}/${segment}`
      paths.add(path)
      paths.add(`${path}/`)
    }
    for (let i = 1; i < labels.length - 1; i++) {
      const domain = labels.slice(i).join('.')
      for (const cookiePath of paths) {
        if (domain === this.settings.domain?.replace(/^\./, '') && cookiePath === this.settings.path) continue
        reply.clearCookie(this.settings.name, { domain, path: cookiePath, secure: this.settings.secure, sameSite: this.settings.sameSite, httpOnly: true })
      }
    }
  }
}
