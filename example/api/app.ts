// A resource server: another service that trusts the auth service's access tokens. It
// holds no private key, no secret and no refresh token: it verifies with the public keys
// the auth service publishes and checks revocation in the auth service's store.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { revocableJwtResourceServer, type RevocableJwtPostgresOptions, type RevocationStore } from '../../lib/index.js'

export interface ApiEnv {
  PORT?: string
  HOST?: string
  /** The auth service's base URL: its keys come from `${AUTH_URL}/.well-known/jwks.json`. */
  AUTH_URL?: string
  /** The auth service's revocation store, when it keeps it in Redis. */
  REDIS_URL?: string
  /** The auth service's revocation store, when it keeps it in PostgreSQL. */
  DATABASE_URL?: string
  /** Pin the algorithm (else each published key's own asymmetric `alg`). */
  JWT_ALGORITHM?: string
}

export interface BuildOptions {
  env?: ApiEnv
  logger?: FastifyServerOptions['logger']
  /** The revocation store instead of the one the environment names (tests). */
  revocationStore?: RevocationStore
}

/** Build the resource server (not started). */
export async function build (options: BuildOptions = {}): Promise<FastifyInstance> {
  const env = options.env ?? (process.env as ApiEnv)
  if (env.AUTH_URL === undefined || env.AUTH_URL === '') throw new TypeError('AUTH_URL is required: the auth service\'s base URL, where its /.well-known/jwks.json is')
  const app = Fastify({ logger: options.logger ?? false })
  const store = await revocationStoreOf(app, env, options.revocationStore)
  await app.register(revocableJwtResourceServer, {
    jwksUrl: new URL('/.well-known/jwks.json', env.AUTH_URL).href,
    ...(env.JWT_ALGORITHM !== undefined && env.JWT_ALGORITHM !== '' && { algorithm: env.JWT_ALGORITHM as 'EdDSA' }),
    ...store
  })
  app.get('/me', { onRequest: app.revocableJwt.authenticate }, async function me (request) {
    return { id: (request.auth as NonNullable<typeof request.auth>).userId }
  })
  return app
}

/** Where the auth service keeps revocation: Redis, else PostgreSQL; one of them is needed. */
async function revocationStoreOf (app: FastifyInstance, env: ApiEnv, given: RevocationStore | undefined): Promise<{ redis?: string, postgres?: RevocableJwtPostgresOptions, revocationStore?: RevocationStore }> {
  if (given !== undefined) return { revocationStore: given }
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') return { redis: env.REDIS_URL }
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== '') {
    // Loaded only when used: with REDIS_URL the resource server never loads pg.
    const { createPool } = await import('../pg-pool.js')
    const pool = createPool(env.DATABASE_URL, app.log)
    app.addHook('onClose', async function endPool () { await pool.end() })
    // The auth service sweeps expired rows; this service only reads them.
    return { postgres: { pool, sweepInterval: 0 } }
  }
  throw new TypeError('REDIS_URL or DATABASE_URL is required: the auth service\'s revocation store, without which a logout there would not be seen here')
}
