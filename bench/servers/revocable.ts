// Servers 3 and 4: this package's umbrella plugin, with memory stores or (with
// BENCH_STORE=redis) the Redis stores on the bench's private redis-server.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { BENCH_SECRET, loginSchema, redisUrl, serveFastify } from '../common.js'

// The package as users run it: tsc's output (bench/run.ts builds it and sets BENCH_LIB),
// not the sources through tsx, whose keepNames adds a call per inner function created.
const lib = process.env.BENCH_LIB ?? new URL('../../lib/', import.meta.url).href
const { default: revocableJwt } = await import(`${lib}index.js`) as typeof import('../../lib/index.js')
const { RedisRefreshTokenStore, RedisRevocationStore } = await import(`${lib}stores/redis.js`) as typeof import('../../lib/stores/redis.js')

const useRedis = process.env.BENCH_STORE === 'redis'
// Auto-pipelining: the concurrent requests' MGETs leave in one write per tick.
const redis = useRedis ? new Redis(redisUrl(), { enableAutoPipelining: true }) : undefined
const stores = redis === undefined
  ? {}
  : {
      revocationStore: new RedisRevocationStore({ client: redis, keyPrefix: 'bench:' }),
      refreshTokenStore: new RedisRefreshTokenStore({ client: redis, keyPrefix: 'bench:' })
    }

// BENCH_VERIFY_CACHE sizes @fastify/jwt's verify cache (the package's default otherwise).
const verifyCacheSize = process.env.BENCH_VERIFY_CACHE === undefined ? undefined : Number(process.env.BENCH_VERIFY_CACHE)

const app = Fastify({ logger: false })
await app.register(revocableJwt, { secret: BENCH_SECRET, prefix: '/auth', verifyCacheSize, ...stores })

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

await serveFastify(app, async () => {
  await app.close()
  redis?.disconnect()
})
