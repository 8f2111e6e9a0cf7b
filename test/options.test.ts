import t from 'tap'
import Fastify from 'fastify'
import revocableJwt, { parseDuration, type RevocableJwtOptions } from '../lib/index.js'
import { TEST_SECRET } from './helper.js'

async function bootWith (options: Record<string, unknown>): Promise<void> {
  const app = Fastify()
  app.register(revocableJwt, options as unknown as RevocableJwtOptions)
  try {
    await app.ready()
  } finally {
    await app.close()
  }
}

const cases: Array<[string, Record<string, unknown>, string]> = [
  ['no secret', {}, 'secret is required (or keys, for key rotation)'],
  ['short secret', { secret: 'short' }, 'secret must be at least 32 bytes long for HMAC algorithms'],
  ['empty secret', { secret: '' }, 'secret must be a non-empty string or Buffer'],
  ['secret and keys', { secret: TEST_SECRET, keys: [] }, 'secret and keys are mutually exclusive: give one of them'],
  ['empty keys', { keys: [] }, 'keys must be a non-empty array of { kid, secret, publicKey }'],
  ['key without kid', { keys: [{ secret: TEST_SECRET }] }, 'keys[0].kid must be a non-empty string'],
  ['duplicate kid', { keys: [{ kid: 'a', secret: TEST_SECRET }, { kid: 'a', secret: TEST_SECRET }] }, 'keys[1].kid "a" is used twice'],
  ['unknown algorithm', { secret: TEST_SECRET, algorithm: 'none' }, 'algorithm must be one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, got "none"'],
  ['asymmetric with a string', { secret: TEST_SECRET, algorithm: 'RS256' }, 'secret must be { private, public } PEM keys for RS256'],
  ['asymmetric without refresh secret', { secret: { private: 'x', public: 'y' }, algorithm: 'ES256' }, 'refreshTokenSecret is required with ES256: every instance must derive rotated refresh tokens with the same key'],
  ['short refresh secret', { secret: TEST_SECRET, refreshTokenSecret: 'short' }, 'refreshTokenSecret must be at least 32 bytes long for HMAC algorithms'],
  ['bad duration', { secret: TEST_SECRET, accessTokenTtl: '15 minutes' }, 'accessTokenTtl must be a number of seconds or a string like "900", "900s", "15m" or "7d", got "15 minutes"'],
  ['negative duration', { secret: TEST_SECRET, refreshTokenTtl: -5 }, 'refreshTokenTtl must be a finite, non-negative duration, got -5'],
  ['infinite duration', { secret: TEST_SECRET, storeTimeout: Infinity }, 'storeTimeout must be a finite, non-negative duration, got Infinity'],
  ['tiny access ttl', { secret: TEST_SECRET, accessTokenTtl: 0 }, 'accessTokenTtl must be at least 1 second'],
  ['refresh shorter than access', { secret: TEST_SECRET, accessTokenTtl: '1h', refreshTokenTtl: '30m' }, 'refreshTokenTtl must be longer than accessTokenTtl'],
  ['long grace', { secret: TEST_SECRET, refreshReuseGrace: '5m' }, 'refreshReuseGrace must be at most 60 seconds: a longer window lets a stolen token through'],
  ['zero store timeout', { secret: TEST_SECRET, storeTimeout: 0 }, 'storeTimeout must be at least 1 millisecond'],
  ['bad cache size', { secret: TEST_SECRET, verifyCacheSize: 1.5 }, 'verifyCacheSize must be a non-negative integer'],
  ['bad prefix', { secret: TEST_SECRET, prefix: 'auth/' }, 'prefix must be a path like "/auth" (leading slash, no trailing slash), got "auth/"'],
  ['bad cookie name', { secret: TEST_SECRET, cookie: { name: 'a b' } }, 'cookie.name must be a valid cookie name'],
  ['bad cookie secure', { secret: TEST_SECRET, cookie: { secure: 'false' } }, 'cookie.secure must be a boolean'],
  ['bad origins', { secret: TEST_SECRET, allowedOrigins: ['example.com'] }, 'allowedOrigins must be an array of origins like "https://app.example.com"'],
  ['bad issuer', { secret: TEST_SECRET, issuer: '' }, 'issuer must be a non-empty string'],
  ['incomplete store', { secret: TEST_SECRET, revocationStore: { check () {} } }, 'revocationStore.revokeToken must be a function'],
  ['bad refresh store', { secret: TEST_SECRET, refreshTokenStore: 5 }, 'refreshTokenStore must be an object'],
  ['bad version lookup', { secret: TEST_SECRET, getTokenVersion: 'yes' }, 'getTokenVersion must be a function'],
  ['bad clock', { secret: TEST_SECRET, now: 0 }, 'now must be a function'],
  ['bad routes', { secret: TEST_SECRET, routes: { logout: 'no' } }, 'routes.logout must be a boolean']
]

for (const [name, options, message] of cases) {
  t.test(`ready() rejects ${name}`, async (t) => {
    await t.rejects(bootWith(options), { message })
  })
}

t.test('durations accept seconds and units, and nothing else', async (t) => {
  t.equal(parseDuration(900, 'd'), 900_000)
  t.equal(parseDuration('900', 'd'), 900_000)
  t.equal(parseDuration('900s', 'd'), 900_000)
  t.equal(parseDuration('15m', 'd'), 900_000)
  t.equal(parseDuration('2h', 'd'), 7_200_000)
  t.equal(parseDuration('7d', 'd'), 604_800_000)
  t.equal(parseDuration(' 10s ', 'd'), 10_000)
  for (const bad of ['', '1.5m', '-1s', '1w', '10 s', 'abc']) {
    t.throws(() => parseDuration(bad, 'x'), { name: 'TypeError' }, JSON.stringify(bad))
  }
  t.throws(() => parseDuration(NaN, 'x'), { name: 'RangeError' })
})

t.test('valid options boot and are exposed normalised', async (t) => {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, accessTokenTtl: '5m', refreshTokenTtl: '1d', refreshReuseGrace: 0, cookie: { secure: false, name: 'rt' }, prefix: '/api/auth', allowedOrigins: ['https://App.example.com'] })
  await app.ready()
  t.teardown(() => app.close())
  t.match(app.revocableJwt.options, {
    algorithm: 'HS256',
    tokenType: 'at+jwt',
    accessTokenTtlMs: 300_000,
    refreshTokenTtlMs: 86_400_000,
    refreshReuseGraceMs: 0,
    storeTimeoutMs: 2000,
    prefix: '/api/auth',
    cookie: { name: 'rt', secure: false },
    allowedOrigins: ['https://app.example.com']
  })
  t.notOk('keys' in app.revocableJwt.options, 'no key material is exposed')
  t.notOk('refreshTokenSecret' in app.revocableJwt.options)
  t.ok(Object.isFrozen(app.revocableJwt.options))
})
