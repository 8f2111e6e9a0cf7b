import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import revocableJwt, { type RevocableJwtOptions } from '../lib/index.js'
import { TEST_SECRET, bearer } from './helper.js'

// authenticate remembers verified tokens (verifyCacheSize); these tests pin down that
// the remembered ones still expire, are still revocable, and that the cache stays bounded.

async function appWith (options: Partial<RevocableJwtOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, ...options } as RevocableJwtOptions)
  app.post<{ Querystring: { user: string } }>('/login', async (request, reply) => reply.issueTokens({ id: request.query.user }))
  app.get('/protected', { onRequest: [app.revocableJwt.authenticate] }, async (request) => request.auth)
  await app.ready()
  return app
}

async function loginAs (app: FastifyInstance, user: string): Promise<string> {
  return (await app.inject({ method: 'POST', url: `/login?user=${user}` })).json().accessToken
}

t.test('a token verified before still answers TOKEN_EXPIRED once its exp has passed', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const token = await loginAs(app, 'alice')
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200, 'verified and remembered')
  // fast-jwt judges exp by Date.now(), so that is the clock to move.
  const realNow = Date.now
  const later = realNow() + 16 * 60_000
  Date.now = () => later
  t.teardown(() => { Date.now = realNow })
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOKEN_EXPIRED')
})

t.test('a token verified before is refused as soon as it is revoked', async (t) => {
  const app = await appWith()
  t.teardown(() => app.close())
  const token = await loginAs(app, 'alice')
  const auth = (await app.inject({ url: '/protected', headers: bearer(token) })).json()
  await app.revocableJwt.revokeAccessToken({ sub: auth.userId, jti: auth.tokenId, exp: auth.expiresAt / 1000 })
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'TOKEN_REVOKED')
})

t.test('with more tokens than verifyCacheSize, every token keeps working', async (t) => {
  const app = await appWith({ verifyCacheSize: 2 })
  t.teardown(() => app.close())
  const tokens = await Promise.all(['a', 'b', 'c', 'd'].map(user => loginAs(app, user)))
  for (let round = 0; round < 3; round++) {
    for (const [i, token] of tokens.entries()) {
      const res = await app.inject({ url: '/protected', headers: bearer(token) })
      t.equal(res.statusCode, 200, `round ${round}, token ${i}`)
      t.equal(res.json().userId, ['a', 'b', 'c', 'd'][i])
    }
  }
})
