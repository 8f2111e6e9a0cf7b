// This package's umbrella plugin, configured by the environment:
//   BENCH_STORE  memory | redis (the `redis: url` option: what users get by default)
//                | redis-app (the app's own @fastify/redis client, auto-pipelining: tuned)
//                | redis-near (`redis: { url, nearCache: true }`)
//                | postgres (both PostgreSQL stores on one `pg` pool, BENCH_DATABASE_URL)
//   BENCH_ALG    HS256 (default) | EdDSA (BENCH_PRIVATE_KEY, BENCH_PUBLIC_KEY)
import Fastify from 'fastify'
import { BENCH_SECRET, loginSchema, redisUrl, serveFastify } from '../common.js'

// The package as users run it: tsc's output (bench/run.ts builds it and sets BENCH_LIB),
// not the sources through tsx, whose keepNames adds a call per inner function created.
const lib = process.env.BENCH_LIB ?? new URL('../../lib/', import.meta.url).href
const { default: revocableJwt } = await import(`${lib}index.js`) as typeof import('../../lib/index.js')

const store = process.env.BENCH_STORE ?? 'memory'
const app = Fastify({ logger: false })
/** The store options: `redis`, or stores given explicitly. */
let redis: Record<string, unknown> | undefined
if (store === 'redis') {
  redis = { redis: { url: redisUrl(), keyPrefix: 'bench:' } }
} else if (store === 'redis-near') {
  redis = { redis: { url: redisUrl(), keyPrefix: 'bench:', nearCache: true } }
} else if (store === 'redis-app') {
  const { default: fastifyRedis } = await import('@fastify/redis')
  await app.register(fastifyRedis, { url: redisUrl(), enableAutoPipelining: true })
  redis = { redis: { keyPrefix: 'bench:' } }
} else if (store === 'postgres') {
  const { default: pg } = await import('pg')
  const { PostgresRevocationStore, PostgresRefreshTokenStore } = await import(`${lib}stores/postgres.js`) as typeof import('../../lib/stores/postgres.js')
  // pg's default pool of 10 connections: more only adds server processes contending for the same cores.
  const pool = new pg.Pool({ connectionString: process.env.BENCH_DATABASE_URL })
  app.addHook('onClose', async () => { await pool.end() })
  const revocationStore = new PostgresRevocationStore({ pool })
  const refreshTokenStore = new PostgresRefreshTokenStore({ pool, tokenVersionsOf: revocationStore })
  app.addHook('onClose', async () => { await Promise.all([revocationStore.close(), refreshTokenStore.close()]) })
  redis = { revocationStore, refreshTokenStore }
} else if (store !== 'memory') {
  throw new TypeError(`BENCH_STORE must be memory, redis, redis-app, redis-near or postgres, got ${store}`)
}
const keys = process.env.BENCH_ALG === 'EdDSA'
  ? { algorithm: 'EdDSA' as const, keys: [{ secret: process.env.BENCH_PRIVATE_KEY as string, publicKey: process.env.BENCH_PUBLIC_KEY as string }], refreshTokenSecret: BENCH_SECRET }
  : { secret: BENCH_SECRET }
// BENCH_VERIFY_CACHE sizes the verified-token cache (the package's default otherwise).
const verifyCacheSize = process.env.BENCH_VERIFY_CACHE === undefined ? undefined : Number(process.env.BENCH_VERIFY_CACHE)

await app.register(revocableJwt, { ...keys, prefix: '/auth', ...(verifyCacheSize !== undefined && { verifyCacheSize }), ...redis })

// `--compare` runs this file with the package as it was at a git ref: before the
// namespace held it, the hook was decorated as fastify.authenticate.
const loose = app as unknown as { revocableJwt: { authenticate?: unknown }, authenticate?: unknown }
const authenticate = (loose.revocableJwt.authenticate ?? loose.authenticate) as typeof app.revocableJwt.authenticate

app.get('/me', { onRequest: [authenticate] }, async function me (request) {
  return { id: (request.auth as NonNullable<typeof request.auth>).userId }
})

app.post<{ Body: { id: string } }>('/login', { schema: { body: loginSchema } }, async function login (request, reply) {
  return reply.issueTokens({ id: request.body.id })
})

await serveFastify(app)
