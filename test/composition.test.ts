// The plugins as pieces: beside an app's own fastify.authenticate, on top of its own
// @fastify/jwt, alone, and what a misassembly says.
import t from 'tap'
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import revocableJwt, { revocableJwtAuthenticate, revocableJwtRevocation, revocableJwtTokenVersions, MemoryRevocationStore } from '../lib/index.js'
import { TEST_SECRET, bearer } from './helper.js'

t.test('an app that decorates fastify.authenticate itself registers the package without error, and both hooks work', async (t) => {
  const app = Fastify()
  await app.register(fastifyJwt, { secret: TEST_SECRET })
  app.decorate('authenticate', async function authenticate (request: FastifyRequest) { await request.jwtVerify() })
  await app.register(revocableJwt, { secret: 'another-secret-another-secret-another!' })
  app.get('/own', { onRequest: [app.authenticate] }, async () => 'own')
  app.get('/ours', { onRequest: [app.revocableJwt.authenticate] }, async () => 'ours')
  app.post('/login', async (_request, reply) => reply.issueTokens({ id: 'ada' }))
  await app.ready()
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/own', headers: bearer(app.jwt.sign({ sub: 'ada' })) })).body, 'own')
  const ours = (await app.inject({ method: 'POST', url: '/login' })).json().accessToken
  t.equal((await app.inject({ url: '/ours', headers: bearer(ours) })).body, 'ours')
  t.equal((await app.inject({ url: '/own', headers: bearer(ours) })).statusCode, 401, 'neither accepts the other\'s tokens')
})

t.test('checkRevocation on an app\'s own tokens: one store call for jti, session and version', async (t) => {
  const store = new MemoryRevocationStore()
  const calls: unknown[][] = []
  const check = store.check.bind(store)
  store.check = async (...args) => { calls.push(args); return await check(...args) }
  const app = Fastify()
  await app.register(fastifyJwt, { secret: TEST_SECRET })
  await app.register(revocableJwtRevocation, { revocationStore: store })
  await app.register(revocableJwtTokenVersions)
  app.get('/p', { onRequest: [async (request) => { await request.jwtVerify() }, app.revocableJwt.checkRevocation] }, async () => 'ok')
  await app.ready()
  t.teardown(() => app.close())
  const token = app.jwt.sign({ sub: 'ada', jti: 'j1', sid: 's1', ver: 0 })
  t.equal((await app.inject({ url: '/p', headers: bearer(token) })).body, 'ok')
  t.same(calls, [['ada', 'j1', 's1']], 'one call, all three asked')
  await app.revocableJwt.revocation.revokeSession('ada', 's1', Date.now() + 60_000)
  t.equal((await app.inject({ url: '/p', headers: bearer(token) })).json().code, 'TOKEN_REVOKED', 'a revoked session of the app\'s own tokens')
  await app.revocableJwt.bumpTokenVersion('bob')
  const bob = app.jwt.sign({ sub: 'bob', jti: 'j2' })
  t.equal((await app.inject({ url: '/p', headers: bearer(bob) })).json().code, 'TOKEN_REVOKED', 'no ver is version 0: older than the bump')
})

t.test('checkRevocation refuses what it cannot check: no claims (placed first), no usable sub, bad ids', async (t) => {
  const app = Fastify()
  await app.register(revocableJwtRevocation, { tokenClaims: (request) => (request.headers['x-claims'] === undefined ? undefined : JSON.parse(request.headers['x-claims'] as string)) })
  app.get('/p', { onRequest: app.revocableJwt.checkRevocation }, async () => 'ok')
  await app.ready()
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/p' })
  t.same([res.statusCode, res.json().code], [401, 'TOKEN_MISSING'])
  for (const claims of [{}, { sub: '' }, { sub: 7 }, { sub: '\ud800x' }, { sub: 'ada', jti: '' }, { sub: 'ada', ver: -1 }, { sub: 'ada', ver: '0' }, { sub: 'ada', sid: 'x'.repeat(300) }]) {
    const bad = await app.inject({ url: '/p', headers: { 'x-claims': JSON.stringify(claims) } })
    t.same([bad.statusCode, bad.json().code], [401, 'TOKEN_INVALID'], JSON.stringify(claims))
  }
  t.equal((await app.inject({ url: '/p', headers: { 'x-claims': JSON.stringify({ sub: 'ada', ver: 5 }) } })).body, 'ok', 'the denylist alone does not judge versions')
})

t.test('a member of the namespace whose plugin is missing says which plugin to register', async (t) => {
  const app = Fastify()
  await app.register(revocableJwtRevocation)
  await app.ready()
  t.teardown(() => app.close())
  t.throws(() => app.revocableJwt.logoutAll, { message: 'fastify.revocableJwt.logoutAll needs the revocableJwtIssuance plugin: register it (the default export registers them all)' })
  t.throws(() => app.revocableJwt.authenticate, { message: /needs the revocableJwtAuthenticate plugin/ })
  t.type(app.revocableJwt.revokeAccessToken, 'function')
})

t.test('the store is configured once: a second check plugin given store options fails at boot', async (t) => {
  const app = Fastify()
  app.register(revocableJwtRevocation)
  app.register(revocableJwtTokenVersions, { storeTimeout: '1s' })
  await t.rejects(async () => { await app.ready() }, { message: 'revocableJwtTokenVersions: storeTimeout configure the revocation store, which the plugin registered before already set up: give them to that one only' })
})

t.test('authenticate alone verifies signatures only, and says so at boot', async (t) => {
  const warnings: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg) } } } })
  await app.register(revocableJwtAuthenticate, { secret: TEST_SECRET })
  await app.ready()
  t.teardown(() => app.close())
  t.match(warnings, [/authenticate runs without a revocation check: access tokens stay valid until they expire/])
})

t.test('request.auth taken by another plugin is a boot error that says so', async (t) => {
  const app = Fastify()
  app.decorateRequest('auth', null)
  app.register(revocableJwtAuthenticate, { secret: TEST_SECRET })
  await t.rejects(async () => { await app.ready() }, { message: 'revocableJwtAuthenticate: request.auth is already decorated by another plugin; fastify-revocable-jwt puts the verified token there' })
})
