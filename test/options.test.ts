import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
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

const EC_KEYS = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })

const cases: Array<[string, Record<string, unknown>, string | RegExp]> = [
  ['no secret', {}, 'secret is required (or keys, for key rotation)'],
  ['short secret', { secret: 'short' }, 'secret must be at least 32 bytes long for HMAC algorithms'],
  ['empty secret', { secret: '' }, 'secret must be a non-empty string or Buffer'],
  ['secret and keys', { secret: TEST_SECRET, keys: [] }, 'secret and keys are mutually exclusive: give one of them'],
  ['empty keys', { keys: [] }, 'keys must be a non-empty array of { kid, secret, publicKey }'],
  ['key without kid', { keys: [{ secret: TEST_SECRET }] }, 'keys[0].kid must be a non-empty string'],
  ['duplicate kid', { keys: [{ kid: 'a', secret: TEST_SECRET }, { kid: 'a', secret: TEST_SECRET }] }, 'keys[1].kid "a" is used twice'],
  ['unknown algorithm', { secret: TEST_SECRET, algorithm: 'none' }, 'algorithm must be one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, got "none"'],
  ['asymmetric with a string', { secret: TEST_SECRET, algorithm: 'RS256' }, 'secret must be { private, public } PEM keys for RS256'],
  ['asymmetric without refresh secret', { secret: { private: EC_KEYS.privateKey, public: EC_KEYS.publicKey }, algorithm: 'ES256' }, 'refreshTokenSecret is required with ES256: every instance must derive rotated refresh tokens with the same key'],
  ['asymmetric key that is not PEM', { secret: { private: 'x', public: 'y' }, algorithm: 'ES256' }, /^secret\.public is not a PEM public key: /],
  ['short refresh secret', { secret: TEST_SECRET, refreshTokenSecret: 'short' }, 'refreshTokenSecret must be a string or Buffer of at least 32 bytes'],
  ['bad duration', { secret: TEST_SECRET, accessTokenTtl: '15 minutes' }, 'accessTokenTtl must be a number of seconds or a string like "900", "900s", "15m" or "7d", got "15 minutes"'],
  ['negative duration', { secret: TEST_SECRET, refreshTokenTtl: -5 }, 'refreshTokenTtl must be a finite, non-negative duration, got -5'],
  ['infinite duration', { secret: TEST_SECRET, storeTimeout: Infinity }, 'storeTimeout must be a finite, non-negative duration, got Infinity'],
  ['tiny access ttl', { secret: TEST_SECRET, accessTokenTtl: 0 }, 'accessTokenTtl must be at least 1 second, got 0'],
  ['access ttl in milliseconds by mistake', { secret: TEST_SECRET, accessTokenTtl: 900000 }, 'accessTokenTtl must be at most 1 day, got 900000, which is 10.4 days (a number is read as seconds: did you mean milliseconds? write a string like "15m")'],
  ['refresh shorter than access', { secret: TEST_SECRET, accessTokenTtl: '1h', refreshTokenTtl: '30m' }, 'refreshTokenTtl must be longer than accessTokenTtl'],
  ['long grace', { secret: TEST_SECRET, refreshReuseGrace: '5m' }, 'refreshReuseGrace must be at most 1 minute, got "5m", which is 5 minutes'],
  ['zero store timeout', { secret: TEST_SECRET, storeTimeout: 0 }, 'storeTimeout must be at least 1 ms, got 0'],
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
  ['bad routes', { secret: TEST_SECRET, routes: { logout: 'no' } }, 'routes.logout must be a boolean'],
  ['misspelt option', { secret: TEST_SECRET, acessTokenTtl: '1m' }, /^fastify-revocable-jwt: unknown option "acessTokenTtl" \(did you mean "accessTokenTtl"\?\); known options: secret, keys, /],
  ['option of another package', { secret: TEST_SECRET, sign: { expiresIn: '1m' } }, /^fastify-revocable-jwt: unknown option "sign"; known options: /],
  ['misspelt route switch', { secret: TEST_SECRET, routes: { logoutall: false } }, /^fastify-revocable-jwt: routes: unknown option "logoutall" \(did you mean "logoutAll"\?\)/],
  ['bad cookie path', { secret: TEST_SECRET, cookie: { path: 'auth' } }, 'cookie.path must be a path like "/auth", got "auth"'],
  ['bad same-site', { secret: TEST_SECRET, cookie: { sameSite: 'none' } }, 'cookie.sameSite must be "strict" or "lax", got "none"'],
  ['__Host- cookie on a path', { secret: TEST_SECRET, cookie: { name: '__Host-rt' } }, 'cookie.name starts with __Host-, which browsers accept only with cookie.secure: true, cookie.path "/" and no cookie.domain'],
  ['no sessions', { secret: TEST_SECRET, maxSessions: 0 }, 'maxSessions must be an integer from 1 to 10000, got 0'],
  ['unbounded sessions', { secret: TEST_SECRET, maxSessions: 10_001 }, 'maxSessions must be an integer from 1 to 10000, got 10001'],
  ['long clock tolerance', { secret: TEST_SECRET, clockTolerance: '1h' }, 'clockTolerance must be at most 5 minutes, got "1h", which is 1 hour'],
  ['redis URL of another scheme', { secret: TEST_SECRET, redis: 'http://localhost:6379' }, 'redis.url must be a redis:// or rediss:// URL, got "http://localhost:6379"'],
  ['bad token claims reader', { secret: TEST_SECRET, tokenClaims: 'user' }, 'tokenClaims must be a function']
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

t.test('valid options boot and the settings in force can be read where they apply', async (t) => {
  const app = Fastify()
  await app.register(revocableJwt, { secret: TEST_SECRET, accessTokenTtl: '5m', refreshTokenTtl: '1d', refreshReuseGrace: 0, cookie: { secure: false, name: 'rt' }, prefix: '/api/auth', allowedOrigins: ['https://App.example.com'] })
  await app.ready()
  t.teardown(() => app.close())
  const { accessTokens, revocation, refreshCookie } = app.revocableJwt
  t.equal(accessTokens.algorithm, 'HS256')
  t.equal(accessTokens.ttlMs, 300_000)
  t.equal(revocation.storeTimeoutMs, 2000)
  t.same(refreshCookie.settings, { name: 'rt', secure: false, domain: undefined, path: '/api/auth', sameSite: 'strict', maxAgeSeconds: 86_400 })
  t.equal(refreshCookie.prefix, '/api/auth')
  t.equal(accessTokens.jwks(), null, 'an HMAC secret is never published')
})
