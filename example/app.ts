import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import createError from '@fastify/error'
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import revocableJwt, {
  InvalidCredentialsError,
  TokenRevokedError,
  parseDuration,
  type RevocableJwtOptions,
  type RefreshTokenStore,
  type RevocationStore
} from '../lib/index.js'
import { DUMMY_PASSWORD_HASH, MemoryUserRegistry, hashPassword, verifyPassword, type User, type UserRegistry } from './users.js'
import { LoginThrottle, MemoryLoginLimiter, type AttemptOutcome, type LoginLimiter } from './login-limiter.js'
import { selectStores, unavailableOnError } from './stores.js'
import { pages } from './pages.js'

const EmailTakenError = createError('EMAIL_TAKEN', 'An account with this email already exists', 409)
const TooManyAttemptsError = createError('TOO_MANY_LOGIN_ATTEMPTS', 'Too many failed logins; try again later', 429)
const TooManyRequestsError = createError('TOO_MANY_REQUESTS', 'Too many requests; try again later', 429)

/** Failed logins allowed per email and client IP in one window. */
export const LOGIN_MAX_FAILURES = 5
/** Failed logins allowed per email in one window, from clients that have not signed in to it before. */
export const LOGIN_MAX_ACCOUNT_FAILURES = 20
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000
/** A client that signed in to an account is exempt from that account's account-wide limit this long. */
export const KNOWN_CLIENT_MS = 30 * 86_400_000

/** Requests to the password-checking routes (register, login), whatever their outcome. */
export interface CredentialRateLimits {
  /** Per client address in one minute: far above what a person or a test suite sends, far below a flood. @default 300 */
  perClient: number
  /** From all clients together in one minute: about half of what two cores hash with the example's scrypt (40–60 ms each). @default 1800 */
  overall: number
}
export const DEFAULT_CREDENTIAL_RATE_LIMITS: CredentialRateLimits = { perClient: 300, overall: 1800 }

export interface ExampleEnv {
  PORT?: string
  HOST?: string
  JWT_SECRET?: string
  /** `HS256` (default), `EdDSA`, `ES256` or `RS256`. */
  JWT_ALGORITHM?: string
  /** PKCS#8 PEM private key for an asymmetric algorithm (a fresh pair per process when unset). */
  JWT_PRIVATE_KEY?: string
  /** More PEM public keys to publish and accept (key rotation: the next key before it signs, a retired one while its tokens live). */
  JWT_PUBLIC_KEYS?: string
  ACCESS_TOKEN_TTL?: string
  REFRESH_TOKEN_TTL?: string
  REFRESH_REUSE_GRACE?: string
  COOKIE_SECURE?: string
  REDIS_URL?: string
  /** With REDIS_URL: answer revocation checks from memory, invalidated by Redis (the near cache). */
  REDIS_NEAR_CACHE?: string
  MONGODB_URL?: string
  /** A PostgreSQL URL: without REDIS_URL, revocation, refresh tokens, users and the login limiter in PostgreSQL. */
  DATABASE_URL?: string
  /** Behind a reverse proxy: `true`, a hop count, or a comma list of proxy addresses (Fastify's trustProxy). */
  TRUST_PROXY?: string
  /** Comma list of extra origins allowed to call refresh/logout (e.g. the public https origin). */
  ALLOWED_ORIGINS?: string
  /** `true`: the /app forms also carry a double-submit CSRF token, required on every post. */
  CSRF_TOKENS?: string
}

export interface BuildOptions {
  /** Environment to read the settings from. @default process.env */
  env?: ExampleEnv
  /** Fastify's logger option. @default false */
  logger?: FastifyServerOptions['logger']
  /** Injected clock for tests. @default Date.now */
  now?: () => number
  /** Stores to use instead of those the environment selects (tests). */
  revocationStore?: RevocationStore
  refreshTokenStore?: RefreshTokenStore
  users?: UserRegistry
  loginLimiter?: LoginLimiter
  /** Limits of the register and login routes (tests lower them). */
  credentialRateLimits?: CredentialRateLimits
}

const credentialsSchema = {
  type: 'object',
  required: ['email', 'password'],
  additionalProperties: false,
  properties: {
    email: { type: 'string', format: 'email', maxLength: 254 },
    password: { type: 'string', minLength: 1, maxLength: 256 }
  }
} as const
const registerSchema = {
  ...credentialsSchema,
  properties: {
    ...credentialsSchema.properties,
    password: { type: 'string', minLength: 8, maxLength: 256 }
  }
} as const
const passwordSchema = {
  type: 'object',
  required: ['currentPassword', 'newPassword'],
  additionalProperties: false,
  properties: {
    currentPassword: { type: 'string', minLength: 1, maxLength: 256 },
    newPassword: { type: 'string', minLength: 8, maxLength: 256 }
  }
} as const
/** Bodies are small JSON objects; anything bigger is refused before parsing. */
const BODY_LIMIT = 4096

function parseBoolean (value: string | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback
  if (/^(true|1|yes)$/i.test(value)) return true
  if (/^(false|0|no)$/i.test(value)) return false
  throw new TypeError(`${name} must be true or false, got ${JSON.stringify(value)}`)
}

const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal']

/**
 * TRUST_PROXY: which proxies' `X-Forwarded-*` headers to believe. A hop count (the
 * number of proxies in front of the service: the client is the address that many
 * entries from the right) or a comma list of the proxies' addresses or CIDR ranges.
 * `true` is refused: it would make the client the left-most `X-Forwarded-For` entry,
 * which the client itself writes, and so any per-client limit resettable by a header.
 */
export function parseTrustProxy (value: string | undefined): false | number | string[] {
  if (value === undefined || value === '' || /^(false|no|0)$/i.test(value)) return false
  if (/^(true|yes)$/i.test(value)) {
    throw new TypeError('TRUST_PROXY=true would trust every X-Forwarded-For entry, and clients write the left-most ones: give the number of proxies in front of the service (1 for one reverse proxy) or their addresses')
  }
  if (/^\d+$/.test(value)) return Number(value)
  const entries = value.split(',').map(entry => entry.trim())
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/')
    const validBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(address) === 4 ? 32 : 128))
    if (!(PROXY_RANGE_NAMES.includes(entry) || (isIP(address) !== 0 && validBits && extra === undefined))) {
      throw new TypeError(`TRUST_PROXY must be a hop count or a comma list of proxy addresses or CIDR ranges, got ${JSON.stringify(entry)}`)
    }
  }
  return entries
}

/**
 * Fastify's `trustProxy` for a parsed TRUST_PROXY. A hop count becomes a function
 * trusting that many hops from the socket: given as a number, this Fastify trusts no
 * hop at all, and every client would share the proxy's address (and its limits).
 */
function trustProxyOption (trust: false | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof trust === 'number' ? (_address, hop) => hop < trust : trust
}

const ALGORITHMS = ['HS256', 'EdDSA', 'ES256', 'RS256'] as const
const KEY_PAIRS = { EdDSA: ['ed25519', {}], ES256: ['ec', { namedCurve: 'P-256' }], RS256: ['rsa', { modulusLength: 2048 }] } as const
const PEM_BLOCK = /-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g

/**
 * The signing options from the environment: HS256 with JWT_SECRET, or an asymmetric
 * algorithm with JWT_PRIVATE_KEY (and JWT_PUBLIC_KEYS published beside it), whose
 * public keys are served at /.well-known/jwks.json. JWT_SECRET then derives rotated
 * refresh tokens, so every instance must share it.
 */
function signingKeys (env: ExampleEnv, secret: string, warn: (message: string) => void): Pick<RevocableJwtOptions, 'secret' | 'keys' | 'algorithm' | 'refreshTokenSecret'> {
  const algorithm = env.JWT_ALGORITHM === undefined || env.JWT_ALGORITHM === '' ? 'HS256' : env.JWT_ALGORITHM
  if (!(ALGORITHMS as readonly string[]).includes(algorithm)) throw new TypeError(`JWT_ALGORITHM must be one of ${ALGORITHMS.join(', ')}, got ${JSON.stringify(algorithm)}`)
  if (algorithm === 'HS256') return { secret }
  // A PEM in an environment variable often arrives with its newlines escaped.
  let privateKey = (env.JWT_PRIVATE_KEY ?? '').replace(/\\n/g, '\n')
  if (privateKey === '') {
    const [type, options] = KEY_PAIRS[algorithm as keyof typeof KEY_PAIRS]
    privateKey = generateKeyPairSync(type as 'ed25519', { ...options, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey
    warn('JWT_PRIVATE_KEY is not set: using a fresh key pair for this process; its tokens will not verify after a restart or on another instance')
  }
  let publicKey: string
  try {
    publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string
  } catch (err) {
    throw new TypeError(`JWT_PRIVATE_KEY is not a PEM private key: ${(err as Error).message}`, { cause: err })
  }
  const others = ((env.JWT_PUBLIC_KEYS ?? '').replace(/\\n/g, '\n').match(PEM_BLOCK) ?? []).map(publicKey => ({ publicKey }))
  return {
    algorithm: algorithm as RevocableJwtOptions['algorithm'],
    keys: [{ secret: privateKey, publicKey }, ...others],
    refreshTokenSecret: secret
  }
}

/** The client a limit counts: its address, or its /64 for IPv6 (one subscriber holds a whole /64). */
function clientOf (request: FastifyRequest): string {
  return normalizeIP(request.ip, 64)
}

function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

/** Build the example service (not started). Tests call this with `app.inject()`. */
export async function build (options: BuildOptions = {}): Promise<FastifyInstance> {
  const env = options.env ?? (process.env as ExampleEnv)
  const app = Fastify({
    logger: options.logger ?? false,
    trustProxy: trustProxyOption(parseTrustProxy(env.TRUST_PROXY)),
    bodyLimit: BODY_LIMIT,
    // Strict bodies: refuse unknown fields instead of dropping them, and a value of the
    // wrong type instead of coercing it (Fastify's default turns ["a@b.c"] into "a@b.c").
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } }
  })
  const now = options.now ?? Date.now

  let secret = env.JWT_SECRET
  if (secret === undefined || secret === '') {
    secret = randomBytes(32).toString('base64url')
    app.log.warn('JWT_SECRET is not set: using a random secret for this process; tokens will not survive a restart or work on another instance')
  }
  const keyOptions = signingKeys(env, secret, app.log.warn.bind(app.log))
  // A bad duration stops the boot with its variable's name: a malformed one here, one
  // out of the package's range when the plugin is registered (below). Empty is unset.
  const durationEnv = (name: 'ACCESS_TOKEN_TTL' | 'REFRESH_TOKEN_TTL' | 'REFRESH_REUSE_GRACE', fallback: string): string => {
    const given = env[name] === undefined || env[name] === '' ? fallback : env[name] as string
    parseDuration(given, name)
    return given
  }
  const accessTokenTtl = durationEnv('ACCESS_TOKEN_TTL', '15m')
  const refreshTokenTtl = durationEnv('REFRESH_TOKEN_TTL', '7d')
  const refreshReuseGrace = durationEnv('REFRESH_REUSE_GRACE', '10s')
  const cookieSecure = parseBoolean(env.COOKIE_SECURE, 'COOKIE_SECURE', true)

  const stores = await selectStores(app, env, now)
  const users = options.users ?? stores.users ?? new MemoryUserRegistry()
  const limiter = options.loginLimiter ?? stores.loginLimiter ?? new MemoryLoginLimiter(LOGIN_FAILURE_WINDOW_MS, now)
  const throttle = new LoginThrottle(limiter, { perClient: LOGIN_MAX_FAILURES, perAccount: LOGIN_MAX_ACCOUNT_FAILURES, knownClientMs: KNOWN_CLIENT_MS })

  const durationVariables: Record<string, string> = { accessTokenTtl: 'ACCESS_TOKEN_TTL', refreshTokenTtl: 'REFRESH_TOKEN_TTL', refreshReuseGrace: 'REFRESH_REUSE_GRACE' }
  try {
    await app.register(revocableJwt, {
      ...keyOptions,
      // Resource servers fetch the public keys here (404 with HS256: nothing to publish).
      jwksRoute: '/.well-known/jwks.json',
      accessTokenTtl,
      refreshTokenTtl,
      refreshReuseGrace,
      cookie: { secure: cookieSecure },
      allowedOrigins: (env.ALLOWED_ORIGINS ?? '').split(',').map(o => o.trim()).filter(o => o !== ''),
      prefix: '/auth',
      now,
      revocationStore: options.revocationStore ?? stores.revocationStore,
      refreshTokenStore: options.refreshTokenStore ?? stores.refreshTokenStore
    })
  } catch (err) {
    // The package names its option (refreshReuseGrace …); the operator set a variable.
    const option = Object.keys(durationVariables).find(name => (err as Error).message?.startsWith(`${name} `))
    if (option !== undefined) throw new RangeError(`${durationVariables[option]}: ${(err as Error).message}`, { cause: err })
    throw err
  }

  /**
   * A password check within the login limits (example/login-limiter.ts): 429 past
   * them, without checking; 401 for a wrong password. Successes never count.
   */
  async function checkPassword<T> (reply: FastifyReply, scope: string, account: string, check: () => Promise<T | null>): Promise<T> {
    let found: T | null = null
    const result: AttemptOutcome = await throttle.attempt(scope, account, clientOf(reply.request), async () => {
      found = await check()
      return found !== null
    })
    if (result.outcome === 'limited') {
      reply.header('retry-after', Math.max(1, Math.ceil(result.retryAfterMs / 1000)))
      throw new TooManyAttemptsError()
    }
    if (result.outcome === 'invalid') throw new InvalidCredentialsError()
    return found as T
  }

  // Every register and login request costs a scrypt: a budget per client address and
  // one for all clients together bound what a flood (or a spray of one password over
  // many accounts) can make the host hash. Counted in Redis with REDIS_URL.
  const rates = options.credentialRateLimits ?? DEFAULT_CREDENTIAL_RATE_LIMITS
  const redis = (app as FastifyInstance & { redis?: Redis }).redis
  await app.register(rateLimit, { global: false, timeWindow: 60_000, ...(redis !== undefined && { redis, nameSpace: 'example:rate:' }) })
  const perClient = app.createRateLimit({ max: rates.perClient, keyGenerator: request => `client|${clientOf(request)}` })
  const overall = app.createRateLimit({ max: rates.overall, keyGenerator: () => 'all' })
  async function limitCredentialRequests (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    for (const check of [perClient, overall]) {
      const limit = await unavailableOnError(async () => await check(request))
      if (!limit.isAllowed && limit.isExceeded) {
        reply.header('retry-after', Math.max(1, limit.ttlInSeconds))
        throw new TooManyRequestsError()
      }
    }
  }

  app.post<{ Body: { email: string, password: string } }>('/auth/register', {
    onRequest: limitCredentialRequests,
    schema: { body: registerSchema }
  }, async function register (request, reply) {
    const email = normaliseEmail(request.body.email)
    const user = await users.create(email, await hashPassword(request.body.password))
    if (user === null) throw new EmailTakenError()
    reply.code(201)
    return { id: user.id, email: user.email }
  })

  /**
   * The user whose password this is, and the token version read **before** the
   * password hash: a password change that lands in between leaves the session stale
   * (see changeCredentials below). Null for a wrong password or an unknown email.
   */
  async function verifyLogin (email: string, password: string): Promise<{ user: User, tokenVersion: number } | null> {
    const known = await users.findByEmail(email)
    const tokenVersion = known === null ? undefined : await app.revocableJwt.getTokenVersion(known.id)
    const user = known === null ? null : await users.findById(known.id)
    const valid = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH)
    return user === null || !valid ? null : { user, tokenVersion: tokenVersion as number }
  }

  app.post<{ Body: { email: string, password: string } }>('/auth/login', {
    onRequest: limitCredentialRequests,
    schema: { body: credentialsSchema }
  }, async function login (request, reply) {
    const email = normaliseEmail(request.body.email)
    const { user, tokenVersion } = await checkPassword(reply, 'login', email, () => verifyLogin(email, request.body.password))
    reply.header('cache-control', 'no-store')
    return reply.issueTokens({ id: user.id, tokenVersion })
  })

  app.post<{ Body: { currentPassword: string, newPassword: string } }>('/auth/password', {
    onRequest: app.revocableJwt.authenticate,
    schema: { body: passwordSchema }
  }, async function changePassword (request, reply) {
    const auth = request.auth as NonNullable<typeof request.auth>
    // A stolen access token must not become unlimited guesses at the current password.
    const user = await checkPassword(reply, 'password', auth.userId, async () => {
      const found = await users.findById(auth.userId)
      return found !== null && await verifyPassword(request.body.currentPassword, found.passwordHash) ? found : null
    })
    const passwordHash = await hashPassword(request.body.newPassword)
    // Ends every session, stores the hash, and bumps the version again: no login that
    // checked the old password can keep a session, whatever the timing.
    await app.revocableJwt.changeCredentials(user.id, () => users.setPasswordHash(user.id, passwordHash))
    return reply.issueTokens({ id: user.id })
  })

  app.get('/me', { onRequest: app.revocableJwt.authenticate }, async function me (request) {
    const auth = request.auth as NonNullable<typeof request.auth>
    const user = await users.findById(auth.userId)
    if (user === null) throw new TokenRevokedError()
    return { id: user.id, email: user.email }
  })
  await app.register(import('./demo.js')) // the silent-refresh demo page at / (example/demo.ts)
  // The server-rendered area under /app (example/pages.ts): the same users, limiter and origins.
  await app.register(pages, {
    users,
    login: async (reply, email, password) => {
      await limitCredentialRequests(reply.request, reply)
      return await checkPassword(reply, 'login', email, () => verifyLogin(email, password))
    },
    allowedOrigins: (env.ALLOWED_ORIGINS ?? '').split(',').map(o => o.trim()).filter(o => o !== ''),
    csrfTokens: parseBoolean(env.CSRF_TOKENS, 'CSRF_TOKENS', false),
    secret
  })

  app.addHook('onClose', async function closeExampleStores () {
    await stores.close?.()
  })

  return app
}
