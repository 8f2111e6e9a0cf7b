// The refresh baseline, written by hand: the presented refresh token's SHA-256 is
// exchanged for a new one in one Redis transaction (GETDEL the old, SET the new), then
// @fastify/jwt signs the access token. No grace window, no reuse detection, no versions.
// A token is `base64url(userId).random`, so the new one can be stored in the same step.
import { createHash, randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import { Redis } from 'ioredis'
import { BENCH_SECRET, TOKEN_TYPE, loginSchema, redisUrl, serveFastify } from '../common.js'

const SESSION_TTL_S = 7 * 86_400
const COOKIE = { path: '/auth', httpOnly: true, secure: true, sameSite: 'strict', maxAge: SESSION_TTL_S } as const
const hash = (token: string): string => createHash('sha256').update(token).digest('base64url')

const redis = new Redis(redisUrl())
const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifyJwt, { secret: BENCH_SECRET, sign: { expiresIn: '15m', typ: TOKEN_TYPE } as Record<string, unknown> })

const mint = (userId: string): string => `${Buffer.from(userId).toString('base64url')}.${randomBytes(32).toString('base64url')}`

app.post<{ Body: { id: string } }>('/login', { schema: { body: loginSchema } }, async function login (request, reply) {
  const refreshToken = mint(request.body.id)
  await redis.set(`refresh:${hash(refreshToken)}`, request.body.id, 'EX', SESSION_TTL_S)
  reply.setCookie('refresh_token', refreshToken, COOKIE)
  return { accessToken: app.jwt.sign({ sub: request.body.id, jti: randomBytes(16).toString('base64url'), ver: 0 }), tokenType: 'Bearer', expiresIn: 900 }
})

app.post('/auth/refresh', async function refresh (request, reply) {
  const presented = request.cookies.refresh_token
  if (presented === undefined) return await reply.code(401).send({ code: 'REFRESH_TOKEN_MISSING' })
  const claimed = Buffer.from(presented.split('.')[0], 'base64url').toString()
  const next = mint(claimed)
  const results = await redis.multi()
    .getdel(`refresh:${hash(presented)}`)
    .set(`refresh:${hash(next)}`, claimed, 'EX', SESSION_TTL_S)
    .exec()
  const userId = results?.[0]?.[1] as string | null
  if (userId !== claimed) return await reply.code(401).send({ code: 'REFRESH_TOKEN_INVALID' })
  reply.setCookie('refresh_token', next, COOKIE)
  return { accessToken: app.jwt.sign({ sub: userId, jti: randomBytes(16).toString('base64url'), ver: 0 }), tokenType: 'Bearer', expiresIn: 900 }
})

await serveFastify(app, async () => {
  await app.close()
  redis.disconnect()
})
