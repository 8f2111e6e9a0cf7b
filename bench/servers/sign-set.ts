// The login baseline, written by hand: @fastify/jwt signs the access token, 32 random
// bytes make the refresh token, its SHA-256 is stored with one `SET … EX`, the cookie is set.
import { createHash, randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import { Redis } from 'ioredis'
import { BENCH_SECRET, TOKEN_TYPE, loginSchema, redisUrl, serveFastify } from '../common.js'

const SESSION_TTL_S = 7 * 86_400

const redis = new Redis(redisUrl())
const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifyJwt, { secret: BENCH_SECRET, sign: { expiresIn: '15m', typ: TOKEN_TYPE } as Record<string, unknown> })
app.post<{ Body: { id: string } }>('/login', { schema: { body: loginSchema } }, async function login (request, reply) {
  const userId = request.body.id
  const sessionId = randomBytes(16).toString('base64url')
  const refreshToken = randomBytes(32).toString('base64url')
  await redis.set(`refresh:${createHash('sha256').update(refreshToken).digest('base64url')}`, `${userId}:${sessionId}`, 'EX', SESSION_TTL_S)
  reply.setCookie('refresh_token', refreshToken, { path: '/auth', httpOnly: true, secure: true, sameSite: 'strict', maxAge: SESSION_TTL_S })
  const accessToken = app.jwt.sign({ sub: userId, sid: sessionId, jti: randomBytes(16).toString('base64url'), ver: 0 })
  return { accessToken, tokenType: 'Bearer', expiresIn: 900 }
})
await serveFastify(app, async () => {
  await app.close()
  redis.disconnect()
})
