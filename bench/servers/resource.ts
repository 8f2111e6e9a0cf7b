// A resource server: this package's verify-only registration, with the public keys from a
// JWKS (served by the orchestrator at BENCH_JWKS_URL) and revocation in the bench's Redis.
import Fastify from 'fastify'
import { redisUrl, serveFastify } from '../common.js'

const lib = process.env.BENCH_LIB ?? new URL('../../lib/', import.meta.url).href
const { revocableJwtResourceServer } = await import(`${lib}index.js`) as typeof import('../../lib/index.js')

const app = Fastify({ logger: false })
await app.register(revocableJwtResourceServer, { jwksUrl: process.env.BENCH_JWKS_URL as string, algorithm: 'EdDSA', redis: { url: redisUrl(), keyPrefix: 'bench:' } })
app.get('/me', { onRequest: app.revocableJwt.authenticate }, async function me (request) {
  return { id: (request.auth as NonNullable<typeof request.auth>).userId }
})
await serveFastify(app)
