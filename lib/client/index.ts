/**
 * fastify-revocable-jwt/client: the browser half of the package. It keeps the access
 * token in memory, sends it as `Authorization: Bearer`, renews it silently through
 * `POST {prefix}/refresh` (the HttpOnly refresh cookie authenticates that call) and
 * coordinates the tabs of one origin so that they refresh one at a time and share the
 * result. No dependencies; any WHATWG `fetch` works (browsers, Node, workers).
 *
 * The package's tsconfig has no DOM lib, so the few browser types used here are
 * declared below, structurally: the real `fetch`, `navigator.locks`,
 * `BroadcastChannel` and `sessionStorage` all fit them.
 */

/** The part of a `Response` the client reads. */
export interface ResponseLike {
  readonly status: number
  readonly ok: boolean
  clone (): ResponseLike
  json (): Promise<unknown>
}

/** The part of `RequestInit` the client reads or sets. */
export interface RequestInitLike {
  method?: string
  headers?: unknown
  body?: unknown
  credentials?: 'omit' | 'same-origin' | 'include'
}

/** The environment's `Response` (DOM or Node), or {@link ResponseLike} where none is declared. */
export type ClientResponse = typeof globalThis extends { Response: { prototype: infer R } } ? R : ResponseLike
/** The environment's `RequestInit` (DOM or Node), or {@link RequestInitLike} where none is declared. */
export type ClientRequestInit = typeof globalThis extends { fetch: (input: never, init?: infer I) => unknown } ? NonNullable<I> : RequestInitLike

/** A WHATWG `fetch`. */
export type FetchLike = (input: string, init?: ClientRequestInit) => Promise<ClientResponse>

/** The Web Locks API's `navigator.locks` (only `request(name, callback)` is used). */
export interface LockManagerLike {
  request<T> (name: string, callback: (lock: unknown) => Promise<T>): Promise<T>
}

/** A `BroadcastChannel`. */
export interface BroadcastChannelLike {
  postMessage (message: unknown): void
  addEventListener (type: 'message', listener: (event: { data: unknown }) => void): void
  removeEventListener (type: 'message', listener: (event: { data: unknown }) => void): void
  close (): void
}

/** A Web Storage object such as `sessionStorage`. */
export interface StorageLike {
  getItem (key: string): string | null
  setItem (key: string, value: string): void
  removeItem (key: string): void
}

/** Time and timers, injectable for tests. */
export interface ClientClock {
  /** Milliseconds since the epoch. */
  now (): number
  setTimeout (callback: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
}

/** What the client knows about its session. */
export type ClientState =
  /** Started with no token and has not asked the server yet. */
  | 'unknown'
  /** Holds an access token. */
  | 'authenticated'
  /** The session is over (logout, failed refresh, revoked); requests go out without a token and never trigger a refresh. */
  | 'logged-out'

/** Why the client left the authenticated state. */
export type LogoutReason = 'logout' | 'logout-all' | 'session-revoked' | 'refresh-failed' | 'other-tab'

/** The events and the detail their listeners receive. */
export interface ClientEventMap {
  /** A new access token is in place. */
  token: { accessToken: string, expiresAt: number | null, source: 'login' | 'refresh' | 'other-tab' }
  /** The client left the authenticated state: emitted once per transition, never twice in a row. */
  'logged-out': { reason: LogoutReason, code: string | null }
}

/** One entry of `GET {prefix}/sessions`. */
export interface SessionInfo {
  id: string
  createdAt: string
  lastUsedAt: string
  userAgent: string | null
  /** This is the session of the token the request was made with. */
  current: boolean
}

/** The body of login, refresh and password-change answers. */
export interface TokensBody {
  accessToken: string
  /** Lifetime of the access token in seconds. */
  expiresIn?: number
}

export interface RevocableJwtClientOptions {
  /**
   * Where the API lives, without a trailing slash (`https://api.example.com`); empty
   * means the page's own origin. The access token is only ever sent below it.
   * @default ''
   */
  baseUrl?: string
  /**
   * The `prefix` the server plugin was registered with.
   * @default '/auth'
   */
  prefix?: string
  /**
   * The path `login()` posts the credentials to (the app's own route).
   * @default `${prefix}/login`
   */
  loginPath?: string
  /**
   * The `fetch` to use. In Node it must keep cookies (the refresh token) itself.
   * @default globalThis.fetch
   */
  fetch?: FetchLike
  /**
   * Refresh this many milliseconds before the access token expires (at the latest
   * halfway through its life); 0 refreshes only when the server answers `TOKEN_EXPIRED`.
   * @default 0
   */
  refreshBeforeExpiry?: number
  /**
   * Codes of a 401 answer that make the client refresh once and retry once. A revoked
   * or invalid token is included because only the refresh cookie can tell whether the
   * session is still alive (one revoked `jti`, a rotated signing key) or over.
   * @default ['TOKEN_EXPIRED', 'TOKEN_REVOKED', 'TOKEN_INVALID']
   */
  refreshOn?: readonly string[]
  /**
   * Where to persist the access token across page loads. Leave it `null`: the token
   * then lives in memory only, out of reach of storage-reading XSS, and a reload
   * refreshes silently. Opt in with e.g. `sessionStorage` only if you accept that.
   * @default null
   */
  storage?: StorageLike | null
  /**
   * The key under which `storage` holds the token.
   * @default 'fastify-revocable-jwt'
   */
  storageKey?: string
  /**
   * Name of the Web Lock and of the BroadcastChannel shared by the tabs.
   * @default `fastify-revocable-jwt:${baseUrl}${prefix}`
   */
  name?: string
  /**
   * Serialises refreshes across tabs. `null` turns it off (single flight within this
   * client only).
   * @default navigator.locks in a browser (window or worker), otherwise null
   */
  locks?: LockManagerLike | null
  /**
   * Shares new tokens and logouts between tabs. `null` turns it off.
   * @default a BroadcastChannel named `name` in a browser, otherwise null
   */
  channel?: BroadcastChannelLike | null
  /**
   * Time and timers.
   * @default Date.now, setTimeout, clearTimeout
   */
  clock?: ClientClock
}

/** A route of the package answered with an error. */
export class RevocableJwtClientError extends Error {
  /** The HTTP status. */
  readonly status: number
  /** The error body's `code` (`INVALID_CREDENTIALS`, `SESSION_NOT_FOUND`, ...), or null. */
  readonly code: string | null

  constructor (status: number, code: string | null, message: string) {
    super(message)
    this.name = 'RevocableJwtClientError'
    this.status = status
    this.code = code
  }
}

interface ClientGlobals {
  fetch?: FetchLike
  Headers: new (init?: unknown) => { set (name: string, value: string): void }
  atob (data: string): string
  setTimeout (callback: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
  reportError?: (error: unknown) => void
  console: { error (...data: unknown[]): void }
  document?: unknown
  WorkerGlobalScope?: unknown
  navigator?: { locks?: LockManagerLike }
  BroadcastChannel?: new (name: string) => BroadcastChannelLike
}

const globals = globalThis as unknown as ClientGlobals

export const DEFAULT_PREFIX = '/auth'
/** Ended sessions a client remembers, to refuse their tokens from other tabs. */
const MAX_ENDED_SESSIONS = 16
export const DEFAULT_STORAGE_KEY = 'fastify-revocable-jwt'
export const DEFAULT_REFRESH_ON: readonly string[] = Object.freeze(['TOKEN_EXPIRED', 'TOKEN_REVOKED', 'TOKEN_INVALID'])
/** Longest delay setTimeout honours (about 24.8 days); longer ones fire at once. */
const MAX_TIMER_DELAY = 2 ** 31 - 1
/** Marks a refresh that must reach the server even if another tab just refreshed. */
const FORCE = Symbol('force')

const defaultClock: ClientClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globals.setTimeout(callback, ms),
  clearTimeout: handle => { globals.clearTimeout(handle) }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

/** The payload of a JWT, unverified: only read for `sid` and `exp`, never trusted. */
function decodeClaims (token: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(globals.atob((token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')))
    return isRecord(value) ? value : {}
  } catch {
    return {}
  }
}

async function readCode (response: ResponseLike): Promise<string | null> {
  try {
    const body = await response.clone().json()
    return isRecord(body) && typeof body.code === 'string' ? body.code : null
  } catch {
    return null
  }
}

async function failure (response: ResponseLike, what: string): Promise<RevocableJwtClientError> {
  const code = await readCode(response)
  return new RevocableJwtClientError(response.status, code, `${what} failed with ${response.status}${code === null ? '' : ` ${code}`}`)
}

/** A body that a second `fetch` can send again (a stream is consumed by the first). */
function replayable (body: unknown): boolean {
  return !isRecord(body) || typeof body.getReader !== 'function'
}

function isBrowser (): boolean {
  return typeof globals.document === 'object' || typeof globals.WorkerGlobalScope === 'function'
}

function checkOptions (options: RevocableJwtClientOptions): void {
  if (!isRecord(options)) throw new TypeError('options must be an object')
  const { baseUrl, prefix, refreshBeforeExpiry, refreshOn } = options
  if (baseUrl !== undefined && (typeof baseUrl !== 'string' || baseUrl.endsWith('/'))) {
    throw new TypeError('baseUrl must be a string without a trailing slash, like "https://api.example.com"')
  }
  if (prefix !== undefined && (typeof prefix !== 'string' || !/^\/[^/]/.test(prefix) || prefix.endsWith('/'))) {
    throw new TypeError('prefix must be a path like "/auth" (leading slash, no trailing slash)')
  }
  if (refreshBeforeExpiry !== undefined && (typeof refreshBeforeExpiry !== 'number' || !Number.isFinite(refreshBeforeExpiry) || refreshBeforeExpiry < 0)) {
    throw new TypeError('refreshBeforeExpiry must be a number of milliseconds, 0 or more')
  }
  if (refreshOn !== undefined && (!Array.isArray(refreshOn) || !refreshOn.every(code => typeof code === 'string'))) {
    throw new TypeError('refreshOn must be an array of error codes')
  }
  if (typeof (options.fetch ?? globals.fetch) !== 'function') {
    throw new TypeError('fetch must be a function (this environment has no global fetch)')
  }
}

type Listener<K extends keyof ClientEventMap> = (detail: ClientEventMap[K]) => void

/**
 * Authenticated `fetch` with silent refresh. One instance per API (and per user in a
 * Node process); in a browser the tabs of one origin cooperate through `name`.
 */
export class RevocableJwtClient {
  readonly #fetch: FetchLike
  readonly #baseUrl: string
  readonly #prefix: string
  readonly #loginPath: string
  readonly #name: string
  readonly #refreshBeforeExpiry: number
  readonly #refreshOn: ReadonlySet<string>
  readonly #storage: StorageLike | null
  readonly #storageKey: string
  readonly #locks: LockManagerLike | null
  readonly #channel: BroadcastChannelLike | null
  readonly #ownsChannel: boolean
  readonly #clock: ClientClock
  readonly #listeners: { [K in keyof ClientEventMap]: Set<Listener<K>> } = { token: new Set(), 'logged-out': new Set() }
  #token: string | null = null
  #expiresAt: number | null = null
  #sessionId: string | null = null
  #state: ClientState = 'unknown'
  #inflight: Promise<string | null> | null = null
  /** Bumped by login and logout so that a refresh answered afterwards is ignored. */
  #epoch = 0
  /** Sessions this client ended (most recent last): another tab's token of one is not adopted. */
  #ended: string[] = []
  #timer: unknown = null
  readonly #onMessage = (event: { data: unknown }): void => { this.#receive(event.data) }

  constructor (options: RevocableJwtClientOptions = {}) {
    checkOptions(options)
    const browser = isBrowser()
    this.#fetch = options.fetch ?? ((input, init) => (globals.fetch as FetchLike)(input, init))
    this.#baseUrl = options.baseUrl ?? ''
    this.#prefix = options.prefix ?? DEFAULT_PREFIX
    this.#loginPath = options.loginPath ?? `${this.#prefix}/login`
    this.#name = options.name ?? `fastify-revocable-jwt:${this.#baseUrl}${this.#prefix}`
    this.#refreshBeforeExpiry = options.refreshBeforeExpiry ?? 0
    this.#refreshOn = new Set(options.refreshOn ?? DEFAULT_REFRESH_ON)
    this.#storage = options.storage ?? null
    this.#storageKey = options.storageKey ?? DEFAULT_STORAGE_KEY
    this.#clock = options.clock ?? defaultClock
    this.#locks = options.locks !== undefined ? options.locks : browser ? globals.navigator?.locks ?? null : null
    let channel = options.channel
    this.#ownsChannel = channel === undefined && browser && globals.BroadcastChannel !== undefined
    if (channel === undefined) channel = this.#ownsChannel ? new (globals.BroadcastChannel as NonNullable<ClientGlobals['BroadcastChannel']>)(this.#name) : null
    this.#channel = channel
    this.#channel?.addEventListener('message', this.#onMessage)
    this.#restore()
  }

  /** The current access token, or null. */
  get accessToken (): string | null { return this.#token }
  /** When the current access token expires (ms since the epoch, by this clock), or null. */
  get expiresAt (): number | null { return this.#expiresAt }
  /** The current token's session id (its `sid` claim), or null. */
  get sessionId (): string | null { return this.#sessionId }
  get state (): ClientState { return this.#state }

  /** Milliseconds the current access token has left, or null without one. */
  timeLeft (): number | null {
    return this.#expiresAt === null ? null : Math.max(0, this.#expiresAt - this.#clock.now())
  }

  /** Listen to an event; returns the function that removes the listener. */
  on<K extends keyof ClientEventMap> (type: K, listener: Listener<K>): () => void {
    const set = this.#listeners[type] as Set<Listener<K>>
    set.add(listener)
    return () => { set.delete(listener) }
  }

  /**
   * Call on page load: with no token, refresh silently (the cookie may hold a session).
   * Resolves true when authenticated; false when logged out or the server was unreachable.
   */
  async start (): Promise<boolean> {
    if (this.#token !== null) return true
    try {
      return await this.#refresh(null) !== null
    } catch {
      return false
    }
  }

  /**
   * `fetch` with the access token. `input` is a path below `baseUrl` (`/me`) or an
   * absolute URL below it; the token is never sent anywhere else. A 401 whose code is
   * in `refreshOn` leads to one refresh (shared by every concurrent caller and tab)
   * and one retry; a retry that fails again is returned as it is.
   */
  async fetch (input: string, init?: ClientRequestInit): Promise<ClientResponse> {
    const url = this.#apiUrl(input)
    const options = (init ?? {}) as RequestInitLike
    if (this.#state === 'unknown' && this.#token === null) await this.start()
    const sent = this.#token
    const response = await this.#send(url, options, sent)
    if (sent === null || !await this.#wantsRefresh(response)) return response
    let token: string | null
    try {
      token = await this.#refresh(sent)
    } catch {
      return response
    }
    if (token === null || !replayable(options.body)) return response
    return await this.#send(url, options, token)
  }

  /** Refresh now (one call at a time across tabs). Resolves the new token, or null when the session is over. */
  refresh (): Promise<string | null> {
    return this.#refresh(FORCE)
  }

  /**
   * Post `credentials` as JSON to `path` (the app's login route) and keep the tokens
   * it answers with. Rejects with a {@link RevocableJwtClientError} on an error answer.
   */
  async login (credentials: unknown, path: string = this.#loginPath): Promise<void> {
    const url = this.#apiUrl(path)
    const body = JSON.stringify(credentials)
    await this.#exclusive(async () => {
      const response = await this.#call(url, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body
      })
      if (!response.ok) throw await failure(response, 'login')
      this.setTokens(await response.json() as TokensBody)
    })
  }

  /**
   * Run `run` when no refresh is on the wire, in this tab or (with the lock) any other:
   * a refresh answered after a login would set its cookie over the new session's.
   */
  async #exclusive<T> (run: () => Promise<T>): Promise<T> {
    await this.#inflight?.catch(() => null)
    return await (this.#locks === null ? run() : this.#locks.request(this.#name, run))
  }

  /** Keep tokens obtained elsewhere (a custom login, `POST /auth/password`), and tell the other tabs. */
  setTokens (tokens: TokensBody): void {
    if (!isRecord(tokens) || typeof tokens.accessToken !== 'string' || tokens.accessToken.length === 0) {
      throw new TypeError('tokens.accessToken must be a non-empty string')
    }
    this.#epoch++
    this.#adopt(tokens.accessToken, this.#expiryOf(tokens), 'login', true)
  }

  /** End this session on the server and here, in every tab. Always forgets the token. */
  async logout (): Promise<void> {
    await this.#end(`${this.#prefix}/logout`, 'logout', false)
  }

  /** End every session of the user (every device) and forget the token in every tab. */
  async logoutAll (): Promise<void> {
    await this.#end(`${this.#prefix}/logout-all`, 'logout-all', true)
  }

  /** The user's live sessions. */
  async listSessions (): Promise<SessionInfo[]> {
    const response = await this.fetch(`${this.#prefix}/sessions`, { headers: { accept: 'application/json' } } as ClientRequestInit) as unknown as ResponseLike
    if (!response.ok) throw await failure(response, 'listing sessions')
    return await response.json() as SessionInfo[]
  }

  /** Revoke one session (a device). Revoking this client's own session logs it out. */
  async revokeSession (sessionId: string): Promise<void> {
    const response = await this.fetch(`${this.#prefix}/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE' } as ClientRequestInit) as unknown as ResponseLike
    if (!response.ok) throw await failure(response, 'revoking the session')
    if (sessionId === this.#sessionId) this.#loggedOut('session-revoked', null, true, false)
  }

  /** Stop the proactive-refresh timer and leave the tab channel. */
  close (): void {
    this.#clearTimer()
    this.#channel?.removeEventListener('message', this.#onMessage)
    if (this.#ownsChannel) this.#channel?.close()
  }

  #apiUrl (input: string): string {
    if (typeof input !== 'string') throw new TypeError('input must be a string')
    if (input.startsWith('/') && !input.startsWith('//')) return `${this.#baseUrl}${input}`
    if (this.#baseUrl !== '' && input.startsWith(`${this.#baseUrl}/`)) return input
    throw new TypeError(`the access token is only sent below baseUrl: give a path like "/me", got ${JSON.stringify(input)}`)
  }

  async #call (url: string, init: RequestInitLike): Promise<ResponseLike> {
    return await this.#fetch(url, init as ClientRequestInit) as unknown as ResponseLike
  }

  async #send (url: string, init: RequestInitLike, token: string | null): Promise<ClientResponse> {
    const headers = new globals.Headers(init.headers)
    if (token !== null) headers.set('authorization', `Bearer ${token}`)
    return await this.#fetch(url, { ...init, headers } as ClientRequestInit)
  }

  async #wantsRefresh (response: ClientResponse): Promise<boolean> {
    const res = response as unknown as ResponseLike
    if (res.status !== 401) return false
    const code = await readCode(res)
    return code !== null && this.#refreshOn.has(code)
  }

  /** A token other than `stale` that has not expired: someone already refreshed. */
  #fresherThan (stale: string | null | typeof FORCE): boolean {
    if (stale === FORCE || this.#token === null || this.#token === stale) return false
    return this.#expiresAt === null || this.#expiresAt > this.#clock.now()
  }

  /** Single flight: one refresh per client at a time, and one per origin with the lock. */
  #refresh (stale: string | null | typeof FORCE): Promise<string | null> {
    if (this.#inflight !== null) return this.#inflight
    if (this.#fresherThan(stale)) return Promise.resolve(this.#token)
    const run = async (): Promise<string | null> => {
      // While this tab waited for the lock, another one may have refreshed and shared its token.
      if (this.#fresherThan(stale)) return this.#token
      return await this.#callRefresh()
    }
    const flight = (this.#locks === null ? run() : this.#locks.request(this.#name, run))
      .finally(() => { this.#inflight = null })
    this.#inflight = flight
    return flight
  }

  async #callRefresh (): Promise<string | null> {
    const epoch = this.#epoch
    const response = await this.#call(this.#apiUrl(`${this.#prefix}/refresh`), {
      method: 'POST',
      credentials: 'include',
      headers: { accept: 'application/json' }
    })
    // A login or logout happened meanwhile: its outcome stands, this answer is stale.
    if (epoch !== this.#epoch) return this.#token
    if (response.ok) {
      const body = await response.json()
      if (!isRecord(body) || typeof body.accessToken !== 'string') throw new RevocableJwtClientError(response.status, null, 'refresh answered without an access token')
      this.#adopt(body.accessToken, this.#expiryOf(body as unknown as TokensBody), 'refresh', true)
      return body.accessToken
    }
    // 4xx: the refresh cookie is missing, invalid, reused or refused; the session is over.
    // Anything else (5xx, 408, 429) is transient and logs no one out.
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      this.#loggedOut('refresh-failed', await readCode(response), true, false)
      return null
    }
    throw await failure(response, 'refresh')
  }

  async #end (path: string, reason: LogoutReason, all: boolean): Promise<void> {
    let response: ResponseLike | null = null
    try {
      if (this.#state !== 'logged-out') {
        response = await this.fetch(path, { method: 'POST', credentials: 'include' } as ClientRequestInit) as unknown as ResponseLike
      }
    } finally {
      this.#loggedOut(reason, null, true, all)
    }
    // 401: the token or session was already dead, which is what logging out wants.
    if (response !== null && !response.ok && response.status !== 401) throw await failure(response, reason)
  }

  #expiryOf (tokens: TokensBody): number | null {
    if (typeof tokens.expiresIn === 'number' && Number.isFinite(tokens.expiresIn)) {
      // Relative to this clock, so a skewed device clock does not matter.
      return this.#clock.now() + tokens.expiresIn * 1000
    }
    const exp = decodeClaims(tokens.accessToken).exp
    return typeof exp === 'number' ? exp * 1000 : null
  }

  #adopt (token: string, expiresAt: number | null, source: ClientEventMap['token']['source'], broadcast: boolean): void {
    this.#token = token
    this.#expiresAt = expiresAt
    const sid = decodeClaims(token).sid
    this.#sessionId = typeof sid === 'string' ? sid : null
    this.#state = 'authenticated'
    this.#storage?.setItem(this.#storageKey, JSON.stringify({ accessToken: token, expiresAt }))
    this.#schedule()
    if (broadcast) this.#channel?.postMessage({ type: 'token', accessToken: token, expiresAt })
    this.#emit('token', { accessToken: token, expiresAt, source })
  }

  #loggedOut (reason: LogoutReason, code: string | null, broadcast: boolean, all: boolean): void {
    const sessionId = this.#sessionId
    if (sessionId !== null) this.#ended = [...this.#ended.slice(-(MAX_ENDED_SESSIONS - 1)), sessionId]
    const was = this.#state
    this.#epoch++
    this.#token = null
    this.#expiresAt = null
    this.#sessionId = null
    this.#state = 'logged-out'
    this.#clearTimer()
    this.#storage?.removeItem(this.#storageKey)
    // Only tabs on the same session (or every tab, for logout-all) follow.
    if (broadcast && (all || sessionId !== null)) this.#channel?.postMessage({ type: 'logged-out', sessionId, all })
    if (was !== 'logged-out') this.#emit('logged-out', { reason, code })
  }

  #receive (data: unknown): void {
    if (!isRecord(data)) return
    if (data.type === 'token' && typeof data.accessToken === 'string' && data.accessToken !== this.#token) {
      // A token of a session this tab has ended crossed the logout message: not adopted.
      const sid = decodeClaims(data.accessToken).sid
      if (typeof sid === 'string' && this.#ended.includes(sid)) return
      const expiresAt = typeof data.expiresAt === 'number' ? data.expiresAt : null
      if (expiresAt !== null && this.#expiresAt !== null && expiresAt < this.#expiresAt) return
      this.#adopt(data.accessToken, expiresAt, 'other-tab', false)
    } else if (data.type === 'logged-out' && this.#state !== 'logged-out') {
      if (data.all === true || (typeof data.sessionId === 'string' && data.sessionId === this.#sessionId)) {
        this.#loggedOut('other-tab', null, false, false)
      }
    }
  }

  #restore (): void {
    let saved: unknown
    try {
      saved = JSON.parse(this.#storage?.getItem(this.#storageKey) ?? 'null')
    } catch {
      saved = null
    }
    if (!isRecord(saved) || typeof saved.accessToken !== 'string') return
    const expiresAt = typeof saved.expiresAt === 'number' ? saved.expiresAt : null
    if (expiresAt !== null && expiresAt <= this.#clock.now()) return
    this.#adopt(saved.accessToken, expiresAt, 'login', false)
  }

  #schedule (): void {
    this.#clearTimer()
    const expiresAt = this.#expiresAt
    if (this.#refreshBeforeExpiry === 0 || expiresAt === null) return
    const token = this.#token
    const now = this.#clock.now()
    // At the latest halfway through the token's life, so a lead longer than the
    // lifetime cannot turn into a refresh loop.
    const dueAt = Math.max(expiresAt - this.#refreshBeforeExpiry, now + (expiresAt - now) / 2)
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null
      if (dueAt > this.#clock.now()) {
        this.#schedule()
        return
      }
      this.#refresh(token).catch(() => { /* transient: the next request's 401 retries */ })
    }, Math.min(Math.max(0, dueAt - now), MAX_TIMER_DELAY))
  }

  #clearTimer (): void {
    if (this.#timer === null) return
    this.#clock.clearTimeout(this.#timer)
    this.#timer = null
  }

  #emit<K extends keyof ClientEventMap> (type: K, detail: ClientEventMap[K]): void {
    for (const listener of [...this.#listeners[type]] as Array<Listener<K>>) {
      try {
        listener(detail)
      } catch (err) {
        // A listener's bug must not break the state machine; report it like EventTarget does.
        if (globals.reportError !== undefined) globals.reportError(err)
        else globals.console.error(err)
      }
    }
  }
}

/** Create a client; see {@link RevocableJwtClientOptions}. */
export function createClient (options?: RevocableJwtClientOptions): RevocableJwtClient {
  return new RevocableJwtClient(options)
}

export default createClient
