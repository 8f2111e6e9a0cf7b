// The issuance baseline: a plain Fastify login route that signs one JWT and does one
// Redis SET, the least any stateful login does.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { Redis } from 'ioredis'
import { BENCH_SECRET, TOKEN_TYPE, loginSchema, redisUrl, serveFastify } from '../common.js'

const SESSION_TTL_MS = 7 * 86_400_000

const redis = new Redis(redisUrl(), { enableAutoPipelining: true })
const app = Fastify({ logger: false })
await app.register(fastifyJwt, { secret: BENCH_SECRET, sign: { expiresIn: '15m', typ: TOKEN_TYPE } as Record<string, unknown> })
app.post<{ Body: { id: string } }>('/login', { schema: { body: loginSchema } }, async function login (request) {
  const sessionId = randomBytes(16).toString('base64url')
  const accessToken = app.jwt.sign({ sub: request.body.id, sid: sessionId, jti: randomBytes(16).toString('base64url'), ver: 0 })
  await redis.set(`session:${sessionId}`, request.body.id, 'PX', SESSION_TTL_MS)
  return { accessToken, tokenType: 'Bearer', expiresIn: 900 }
})
await serveFastify(app, async () => {
  await app.close()
  redis.disconnect()
})
