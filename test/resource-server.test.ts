// Verify-only registrations and the JWKS route, at the plugin level.
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import revocableJwt, { revocableJwtResourceServer, MemoryRevocationStore, type ResourceServerOptions } from '../lib/index.js'
import { TEST_SECRET, bearer } from './helper.js'

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })

/** An auth service that signs ES256 and publishes its keys, listening on a real port for the JWKS fetches. */
async function authService (): Promise<{ app: FastifyInstance, url: string, store: MemoryRevocationStore }> {
  const store = new MemoryRevocationStore()
  const app = Fastify()
  await app.register(revocableJwt, { algorithm: 'ES256', keys: [{ secret: pair.privateKey, publicKey: pair.publicKey }], refreshTokenSecret: TEST_SECRET, jwksRoute: '/.well-known/jwks.json', revocationStore: store })
  app.post('/login', async (_request, reply) => reply.issueTokens({ id: 'ada' }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, store }
}

async function resourceServer (options: ResourceServerOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(revocableJwtResourceServer, options)
  app.get('/me', { onRequest: app.revocableJwt.authenticate }, async (request) => ({ id: request.auth?.userId }))
  await app.ready()
  return app
}

t.test('a resource server verifies with the JWKS and enforces revocation in the shared store', async (t) => {
  const auth = await authService()
  t.teardown(() => auth.app.close())
  const api = await resourceServer({ jwksUrl: `${auth.url}/.well-known/jwks.json`, algorithm: 'ES256', revocationStore: auth.store })
  t.teardown(() => api.close())
  const token = (await auth.app.inject({ method: 'POST', url: '/login' })).json().accessToken
  t.same((await api.inject({ url: '/me', headers: bearer(token) })).json(), { id: 'ada' })
  await auth.app.revocableJwt.revokeAccessToken(await auth.app.revocableJwt.verifyAccessToken(token))
  t.equal((await api.inject({ url: '/me', headers: bearer(token) })).json().code, 'TOKEN_REVOKED')
  t.throws(() => api.revocableJwt.issueTokens, /needs the revocableJwtIssuance plugin/, 'it cannot issue')
  t.equal(api.revocableJwt.jwks(), null, 'it publishes nothing')
})

t.test('configured public keys work without any fetch', async (t) => {
  const auth = await authService()
  t.teardown(() => auth.app.close())
  const api = await resourceServer({ algorithm: 'ES256', keys: [{ publicKey: pair.publicKey }], revocation: false })
  t.teardown(() => api.close())
  const token = (await auth.app.inject({ method: 'POST', url: '/login' })).json().accessToken
  t.equal((await api.inject({ url: '/me', headers: bearer(token) })).statusCode, 200)
})

t.test('the JWKS route publishes public members only, and 404 with an HMAC secret', async (t) => {
  const auth = await authService()
  t.teardown(() => auth.app.close())
  const res = await auth.app.inject({ url: '/.well-known/jwks.json' })
  t.equal(res.headers['cache-control'], 'public, max-age=300')
  const [key] = res.json().keys
  t.match(key, { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: /^[A-Za-z0-9_-]{43}$/ })
  t.notOk('d' in key)
  const hmac = Fastify()
  await hmac.register(revocableJwt, { secret: TEST_SECRET, jwksRoute: '/.well-known/jwks.json' })
  t.teardown(() => hmac.close())
  t.equal((await hmac.inject({ url: '/.well-known/jwks.json' })).statusCode, 404)
})

for (const [name, options, message] of [
  ['a private key', { keys: [{ secret: pair.privateKey, publicKey: pair.publicKey }], algorithm: 'ES256', revocation: false }, 'revocableJwtResourceServer verifies only: give keys with their publicKey and no secret (the private key stays with the auth service)'],
  ['no keys at all', { revocation: false }, 'revocableJwtResourceServer needs the auth service\'s public keys: jwksUrl (its JWKS) or keys ({ kid, publicKey })'],
  ['no shared store', { jwksUrl: 'https://auth.example/.well-known/jwks.json' }, 'revocableJwtResourceServer checks revocation in the auth service\'s store: give redis (or postgres, or revocationStore) pointing at it, or revocation: false to honour tokens until they expire'],
  ['an HMAC algorithm with a JWKS', { jwksUrl: 'https://auth.example/.well-known/jwks.json', algorithm: 'HS256', revocation: false }, 'algorithm HS256 shares its secret: a JWKS publishes public keys only, give an asymmetric algorithm with jwksUrl'],
  ['a JWKS URL of another scheme', { jwksUrl: 'ftp://auth.example/jwks', revocation: false }, 'jwksUrl must be an http(s) URL, got "ftp://auth.example/jwks"'],
  ['a secret', { secret: TEST_SECRET, revocation: false }, /^revocableJwtResourceServer: unknown option "secret"/]
] as const) {
  t.test(`a resource server refuses ${name} at boot`, async (t) => {
    const app = Fastify()
    app.register(revocableJwtResourceServer, options as ResourceServerOptions)
    await t.rejects(async () => { await app.ready() }, { message })
  })
}
