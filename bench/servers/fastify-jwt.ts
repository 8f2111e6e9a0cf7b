// Server 2, what users have today: @fastify/jwt's `request.jwtVerify()` and nothing
// else, so a token stays valid until it expires whatever happens.
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { BENCH_SECRET, serveFastify } from '../common.js'

const app = Fastify({ logger: false })
await app.register(fastifyJwt, { secret: BENCH_SECRET })
app.get('/me', {
  onRequest: async function authenticate (request) {
    await request.jwtVerify()
  }
}, async function me (request) {
  return { id: (request.user as { sub: string }).sub }
})
await serveFastify(app)
