// A service that already issues and verifies its own tokens with @fastify/jwt, and
// decorates fastify.authenticate itself as @fastify/jwt's README teaches. It adds only
// the package's revocation (denylist) and token-version checks: logout ends the token
// in hand, logout-all every token of the user issued before.
import { randomBytes, randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { revocableJwtRevocation, revocableJwtTokenVersions, type ForeignTokenClaims } from '../../lib/index.js'

export interface ExistingEnv {
  PORT?: string
  HOST?: string
  /** The service's own HS256 secret (a random one per process when unset, with a warning). */
  JWT_SECRET?: string
  /** Revocations and versions in Redis, shared by every instance; memory when unset. */
  REDIS_URL?: string
}

export interface BuildOptions {
  env?: ExistingEnv
  logger?: FastifyServerOptions['logger']
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's own hook: verifies its own tokens (set up as @fastify/jwt's README shows). */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

const loginSchema = {
  type: 'object',
  required: ['username'],
  additionalProperties: false,
  properties: { username: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' } }
} as const

/** Build the service (not started). Tests call this with `app.inject()`. */
export async function build (options: BuildOptions = {}): Promise<FastifyInstance> {
  const env = options.env ?? (process.env as ExistingEnv)
  const app = Fastify({ logger: options.logger ?? false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } })

  // --- what the service had before adopting the package ---
  let secret = env.JWT_SECRET
  if (secret === undefined || secret === '') {
    secret = randomBytes(32).toString('base64url')
    app.log.warn('JWT_SECRET is not set: using a random secret for this process')
  }
  await app.register(fastifyJwt, { secret, sign: { expiresIn: '15m' } })
  app.decorate('authenticate', async function authenticate (request: FastifyRequest) {
    await request.jwtVerify()
  })

  // --- what it adds: the two checks, sharing one store (Redis when REDIS_URL is set) ---
  const redis = env.REDIS_URL !== undefined && env.REDIS_URL !== '' ? env.REDIS_URL : undefined
  await app.register(revocableJwtRevocation, { ...(redis !== undefined && { redis }) })
  await app.register(revocableJwtTokenVersions)
  // Every protected route: the app's own verification, then the package's check.
  const protect = [app.authenticate, app.revocableJwt.checkRevocation]

  app.post<{ Body: { username: string } }>('/login', { schema: { body: loginSchema } }, async function login (request) {
    const sub = request.body.username
    // `ver` lets logout-all end this token later; `jti` lets logout end it alone.
    const ver = await app.revocableJwt.getTokenVersion(sub)
    return { token: app.jwt.sign({ sub, jti: randomUUID(), ver }) }
  })

  // The claims @fastify/jwt verified, as the checks read them.
  const claimsOf = (request: FastifyRequest): ForeignTokenClaims => request.user as ForeignTokenClaims

  app.get('/profile', { onRequest: protect }, async function profile (request) {
    return { username: claimsOf(request).sub }
  })

  app.post('/logout', { onRequest: protect }, async function logout (request, reply) {
    const { sub, jti, exp } = claimsOf(request)
    // A token without a jti (issued before) can only end with all of its user's: logout-all.
    if (jti !== undefined && exp !== undefined) await app.revocableJwt.revokeAccessToken({ sub, jti, exp })
    else await app.revocableJwt.bumpTokenVersion(sub)
    reply.code(204).send()
  })

  app.post('/logout-all', { onRequest: protect }, async function logoutAll (request, reply) {
    await app.revocableJwt.bumpTokenVersion(claimsOf(request).sub)
    reply.code(204).send()
  })

  return app
}
