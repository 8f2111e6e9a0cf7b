// What a user would write by hand to revoke: @fastify/jwt's `jwtVerify()` and one MGET of
// the revoked-jti, revoked-session and version keys, with ioredis as it comes.
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { Redis } from 'ioredis'
import { BENCH_SECRET, redisUrl, serveFastify } from '../common.js'

interface Claims { sub: string, sid: string, jti: string, ver: number }

const redis = new Redis(redisUrl())
const app = Fastify({ logger: false })
await app.register(fastifyJwt, { secret: BENCH_SECRET })
app.get('/me', {
  onRequest: async function authenticate (request, reply) {
    await request.jwtVerify()
    const { sub, sid, jti, ver } = request.user as Claims
    const [token, session, version] = await redis.mget(`revoked:jti:${jti}`, `revoked:sid:${sid}`, `version:${sub}`)
    if (token !== null || session !== null || Number(version ?? 0) !== ver) reply.code(401).send({ code: 'TOKEN_REVOKED' })
  }
}, async function me (request) {
  return { id: (request.user as Claims).sub }
})
await serveFastify(app, async () => {
  await app.close()
  redis.disconnect()
})
