// `npm run bench`: every server in its own child process on a free loopback port,
// loaded in turn by autocannon from this process, compared in one markdown table per
// group. Ratios are taken within each round (a row against its group's baseline, measured
// minutes apart at most) and the median of the rounds is reported.
//
//   npm run bench                                  full run (BENCH_DURATION s per row, default 5)
//   npm run bench -- --rounds 5 --duration 4       median of 5 rounds, order reversed every other round
//   npm run bench -- --only redis --profile        rows whose name matches (a comma list: any of them), servers run with --cpu-prof
//   npm run bench -- --compare HEAD~1              adds the package's rows served by lib/ as it was at a git ref
//   BENCH_DURATION=1 npm run bench -- --smoke      every server briefly; exit 0 iff all answered 2xx
//   npm run bench -- memory                        the memory store's bytes per revoked jti (bench/memory.ts)
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import autocannon from 'autocannon'
import { RedisServer, rawCommand } from '../test/redis-server.js'
import { PostgresServer } from '../test/postgres-server.js'
import { jwkThumbprint, publicJwkOf, publicJwks } from '../lib/domain/keys.js'
import { makeTokens, type BenchKeyPair, type BenchToken, type FromServer, type ToServer } from './common.js'

const here = dirname(fileURLToPath(import.meta.url))
const RESULTS_DIR = join(here, 'results')
/**
 * Private tsc output of lib/: never the shared dist/, which a concurrent `npm test`
 * rebuilds. Under node_modules/.cache so that imports of the dependencies resolve and
 * neither git nor eslint look at it.
 */
const BUILD_DIR = join(here, '..', 'node_modules', '.cache', 'fastify-revocable-jwt-bench')
const START_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 5_000
const DISTINCT_USERS = 1000
/** verifyCacheSize of the extra row that shows a cache smaller than the live tokens. */
const SIZED_VERIFY_CACHE = 100
/** Refresh cookies in the pool per connection: warm-up and measured run each lose up to one per connection. */
const REFRESH_POOL_PER_CONNECTION = 8

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    smoke: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    compare: { type: 'string' },
    profile: { type: 'boolean', default: false }
  }
})

function numberSetting (flag: string | undefined, env: string | undefined, fallback: number, name: string): number {
  const raw = flag ?? env
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got ${JSON.stringify(raw)}`)
  return value
}

const smoke = flags.smoke === true
const duration = numberSetting(flags.duration, process.env.BENCH_DURATION, smoke ? 1 : 5, 'duration (--duration, BENCH_DURATION)')
const warmup = smoke ? 0 : numberSetting(flags.warmup, process.env.BENCH_WARMUP, Math.max(1, Math.round(duration / 2)), 'warm-up (--warmup, BENCH_WARMUP)')
const rounds = smoke ? 1 : Math.round(numberSetting(flags.rounds, process.env.BENCH_ROUNDS, 1, 'rounds (--rounds, BENCH_ROUNDS)'))
const connections = Math.round(numberSetting(flags.connections, process.env.BENCH_CONNECTIONS, 50, 'connections (--connections, BENCH_CONNECTIONS)'))

type Group = 'one token' | `${number} users` | 'login' | 'refresh'
const MANY: Group = `${DISTINCT_USERS} users`

interface Row {
  /** Key used by the targets and `--only`. */
  id: string
  group: Group
  label: string
  server: string
  env?: Record<string, string>
  /** Directory of the compiled package this row's server imports (the working tree's by default). */
  lib?: string
  load: (url: string) => Promise<LoadPlan>
}

interface LoadPlan {
  options: Partial<autocannon.Options>
}

interface Measurement {
  reqPerSec: number
  p50: number
  p99: number
  rss: number
  non2xx: number
  errors: number
  failure?: string
}

// ---- load shapes -------------------------------------------------------------

const edKey: BenchKeyPair = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  return { privateKey, publicKey, kid: jwkThumbprint(publicJwkOf(publicKey)) }
})()
const tokens: Record<'hs' | 'ed', { one: BenchToken, many: BenchToken[] }> = {
  hs: { one: makeTokens(1)[0], many: makeTokens(DISTINCT_USERS) },
  ed: { one: makeTokens(1, edKey)[0], many: makeTokens(DISTINCT_USERS, edKey) }
}

function bearerOne (kind: 'hs' | 'ed'): () => Promise<LoadPlan> {
  // No setupRequest: autocannon builds this request once and resends the same bytes.
  return () => Promise.resolve({ options: { requests: [{ method: 'GET', path: '/me', headers: { authorization: `Bearer ${tokens[kind].one.token}` } }] } })
}

function bearerRoundRobin (kind: 'hs' | 'ed'): () => Promise<LoadPlan> {
  return () => roundRobin(tokens[kind].many)
}

function roundRobin (many: BenchToken[]): Promise<LoadPlan> {
  let next = 0
  const headers = many.map(t => ({ authorization: `Bearer ${t.token}` }))
  return Promise.resolve({
    options: {
      requests: [{
        method: 'GET',
        path: '/me',
        setupRequest (request) {
          request.headers = headers[next++ % headers.length]
          return request
        }
      }]
    }
  })
}

const JSON_HEADERS = { 'content-type': 'application/json' }
const loginBodies = Array.from({ length: DISTINCT_USERS }, (_, i) => JSON.stringify({ id: `user-${i}` }))

/** `POST /login` as 10,000 users in turn: a new session each time. */
function loginRoundRobin (): Promise<LoadPlan> {
  let next = 0
  return Promise.resolve({
    options: {
      requests: [{
        method: 'POST',
        path: '/login',
        headers: JSON_HEADERS,
        setupRequest (request) {
          request.body = loginBodies[next++ % loginBodies.length]
          return request
        }
      }]
    }
  })
}

function refreshCookie (headers: Record<string, unknown>, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== 'set-cookie') continue
    for (const cookie of Array.isArray(value) ? value : [value]) {
      const match = new RegExp(`^${name}=([^;]+)`).exec(String(cookie))
      if (match !== null) return match[1]
    }
  }
  return undefined
}

/**
 * `POST /auth/refresh` chains: a pool of sessions (logged in beforehand, each a
 * different user); every request takes a refresh token out of the pool and its
 * response puts the rotated one back, so each token is presented exactly once and
 * no two requests ever race on one session (no grace or reuse path is measured).
 */
async function refreshChains (url: string): Promise<LoadPlan> {
  const pool: string[] = []
  for (let i = 0; i < connections * REFRESH_POOL_PER_CONNECTION; i++) {
    const res = await fetch(`${url}/login`, { method: 'POST', headers: JSON_HEADERS, body: loginBodies[i] })
    const headers: Record<string, unknown> = { 'set-cookie': res.headers.getSetCookie() }
    const cookie = refreshCookie(headers, 'refresh_token')
    if (!res.ok || cookie === undefined) throw new Error(`login for the refresh pool failed: ${res.status}`)
    pool.push(cookie)
  }
  return {
    options: {
      requests: [{
        method: 'POST',
        path: '/auth/refresh',
        setupRequest (request) {
          const cookie = pool.shift()
          request.headers = cookie === undefined ? {} : { cookie: `refresh_token=${cookie}` }
          return request
        },
        onResponse (_status, _body, _context, headers) {
          const cookie = refreshCookie(headers as Record<string, unknown>, 'refresh_token')
          if (cookie !== undefined) pool.push(cookie)
        }
      }]
    }
  }
}

// ---- the rows ------------------------------------------------------------------

const ED = { BENCH_ALG: 'EdDSA', BENCH_PRIVATE_KEY: edKey.privateKey, BENCH_PUBLIC_KEY: edKey.publicKey }

/** The rows of one GET /me group; the first is the group's baseline. */
function verifyRows (group: Group, load: (kind: 'hs' | 'ed') => () => Promise<LoadPlan>): Row[] {
  const s = group === 'one token' ? '1' : 'n'
  const hs = load('hs')
  return [
    { id: `plain-${s}`, group, label: 'fastify, no auth (ceiling)', server: 'fastify-plain', load: hs },
    { id: `jwt-${s}`, group, label: '@fastify/jwt `jwtVerify()`, revokes nothing', server: 'fastify-jwt', load: hs },
    { id: `jwt-mget-${s}`, group, label: '@fastify/jwt + one hand-written `MGET`', server: 'fastify-jwt-mget', load: hs },
    { id: `redis-${s}`, group, label: '**this package, Redis (`redis: url`, the default)**', server: 'revocable', env: { BENCH_STORE: 'redis' }, load: hs },
    { id: `redis-app-${s}`, group, label: 'this package, Redis, the app\'s auto-pipelined client', server: 'revocable', env: { BENCH_STORE: 'redis-app' }, load: hs },
    { id: `near-${s}`, group, label: 'this package, Redis + near cache (`nearCache: true`)', server: 'revocable', env: { BENCH_STORE: 'redis-near' }, load: hs },
    { id: `memory-${s}`, group, label: 'this package, memory stores', server: 'revocable', env: { BENCH_STORE: 'memory' }, load: hs },
    { id: `postgres-${s}`, group, label: 'this package, PostgreSQL stores on the app\'s `pg` pool', server: 'revocable', env: { BENCH_STORE: 'postgres' }, load: hs },
    { id: `auth-ed-${s}`, group, label: 'this package, Redis, EdDSA (an auth service)', server: 'revocable', env: { BENCH_STORE: 'redis', ...ED }, load: load('ed') },
    { id: `api-ed-${s}`, group, label: 'this package, resource server: JWKS + Redis, EdDSA', server: 'resource', load: load('ed') }
  ]
}

const ROWS: Row[] = [
  ...verifyRows('one token', bearerOne),
  ...verifyRows(MANY, bearerRoundRobin),
  { id: 'redis-n-cache', group: MANY, label: `this package, Redis, \`verifyCacheSize: ${SIZED_VERIFY_CACHE}\` (too small)`, server: 'revocable', env: { BENCH_STORE: 'redis', BENCH_VERIFY_CACHE: String(SIZED_VERIFY_CACHE) }, load: bearerRoundRobin('hs') },
  { id: 'sign-set', group: 'login', label: 'by hand: @fastify/jwt sign + 32-byte refresh + SHA-256 + `SET EX`', server: 'sign-set', load: loginRoundRobin },
  { id: 'login-redis', group: 'login', label: '**this package, `reply.issueTokens`, Redis (`redis: url`)**', server: 'revocable', env: { BENCH_STORE: 'redis' }, load: loginRoundRobin },
  { id: 'login-postgres', group: 'login', label: 'this package, `reply.issueTokens`, PostgreSQL', server: 'revocable', env: { BENCH_STORE: 'postgres' }, load: loginRoundRobin },
  { id: 'login-memory', group: 'login', label: 'this package, `reply.issueTokens`, memory', server: 'revocable', env: { BENCH_STORE: 'memory' }, load: loginRoundRobin },
  { id: 'rotate-by-hand', group: 'refresh', label: 'by hand: @fastify/jwt sign + one Redis transaction (`GETDEL` + `SET EX`)', server: 'rotate-by-hand', load: refreshChains },
  { id: 'refresh-redis', group: 'refresh', label: '**this package, `POST /auth/refresh`, Redis (`redis: url`)**', server: 'revocable', env: { BENCH_STORE: 'redis' }, load: refreshChains },
  { id: 'refresh-postgres', group: 'refresh', label: 'this package, `POST /auth/refresh`, PostgreSQL', server: 'revocable', env: { BENCH_STORE: 'postgres' }, load: refreshChains },
  { id: 'refresh-memory', group: 'refresh', label: 'this package, `POST /auth/refresh`, memory', server: 'revocable', env: { BENCH_STORE: 'memory' }, load: refreshChains }
]

const GROUPS: Array<{ group: Group, title: string }> = [
  { group: 'one token', title: 'GET /me, one token' },
  { group: MANY, title: `GET /me, ${MANY} in turn` },
  { group: 'login', title: 'Login: `POST /login` as 1,000 users in turn' },
  { group: 'refresh', title: 'Refresh: `POST /auth/refresh`, each token presented once' }
]

// ---- server processes ----------------------------------------------------------

interface RunningServer {
  child: ChildProcess
  url: string
  exited: Promise<void>
}

function request (child: ChildProcess, message: ToServer): void {
  child.send(message)
}

let jwksUrl = ''

/** The JWKS the resource-server rows fetch their public key from, as an auth service would serve it. */
async function serveJwks (): Promise<() => Promise<void>> {
  const body = JSON.stringify({ keys: publicJwks('EdDSA', [{ kid: edKey.kid, signKey: undefined, verifyKey: edKey.publicKey }]) })
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' })
    response.end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
  return async () => { await new Promise(resolve => server.close(resolve)) }
}

async function startServer (row: Row, redisUrl: string, storeEnv: Record<string, string>): Promise<RunningServer> {
  const execArgv = ['--import', 'tsx']
  if (flags.profile === true) {
    // One directory per row: tsx's loader thread writes a profile of its own next to the main thread's.
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles', row.id)}`)
  }
  const child = fork(join(here, 'servers', `${row.server}.ts`), [], {
    execArgv,
    env: { ...process.env, ...row.env, ...storeEnv, BENCH_REDIS_URL: redisUrl, BENCH_JWKS_URL: jwksUrl, BENCH_LIB: pathToFileURL(join(row.lib ?? BUILD_DIR, 'lib')).href + '/', NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${row.server} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    child.on('message', function onListening (message: FromServer) {
      if (message.type !== 'listening') return
      clearTimeout(timer)
      child.off('message', onListening)
      resolve(message.port)
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${row.server} exited with ${code} before listening`)) })
  })
  return { child, url: `http://127.0.0.1:${port}`, exited }
}

function serverRss (server: RunningServer): Promise<number> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(Number.NaN), STOP_TIMEOUT_MS)
    server.child.on('message', function onRss (message: FromServer) {
      if (message.type !== 'rss') return
      clearTimeout(timer)
      server.child.off('message', onRss)
      resolve(message.rss)
    })
    request(server.child, { type: 'rss' })
  })
}

async function stopServer (server: RunningServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  request(server.child, { type: 'stop' })
  const timer = setTimeout(() => server.child.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await server.exited
  clearTimeout(timer)
}

// ---- measuring -----------------------------------------------------------------

function cannon (url: string, plan: LoadPlan, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, pipelining: 1, duration: seconds, ...plan.options })
}

let databases = 0

async function measure (row: Row, redis: RedisServer, postgres: PostgresServer | null): Promise<Measurement> {
  // Every Redis row starts from an empty database, and every PostgreSQL row from a new one.
  await rawCommand(redis.port, 'FLUSHALL')
  let server: RunningServer | undefined
  try {
    const storeEnv: Record<string, string> = postgres === null ? {} : { BENCH_DATABASE_URL: await postgres.createDatabase(`bench_${++databases}`) }
    server = await startServer(row, redis.url, storeEnv)
    const plan = await row.load(server.url)
    if (warmup > 0) await cannon(server.url, plan, warmup)
    const result = await cannon(server.url, plan, duration)
    const rss = await serverRss(server)
    return {
      reqPerSec: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      rss,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts
    }
  } catch (err) {
    return { reqPerSec: 0, p50: 0, p99: 0, rss: Number.NaN, non2xx: 0, errors: 1, failure: (err as Error).message }
  } finally {
    if (server !== undefined) await stopServer(server)
  }
}

function isResult (m: Measurement | undefined): boolean {
  return m !== undefined && m.failure === undefined && m.non2xx === 0 && m.errors === 0 && m.reqPerSec > 0
}

/** The round whose req/s is the median; a row flagged in any round stays flagged. */
function median (runs: Measurement[]): Measurement {
  const flagged = runs.find(run => !isResult(run))
  if (flagged !== undefined) return flagged
  const sorted = [...runs].sort((a, b) => a.reqPerSec - b.reqPerSec)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

// ---- reporting -----------------------------------------------------------------

const fmt = (n: number, digits = 0): string => Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a'

/** Every round's measurements, by row id, in round order. */
type Runs = Map<string, Measurement[]>

function middle (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]
}

/**
 * The median over the rounds of `id`'s req/s divided by `of`'s in the same round: each
 * ratio compares two rows measured minutes apart at most, whatever the machine did
 * between rounds. NaN when a round of either row is not a result.
 */
function ratio (runs: Runs, id: string, of: string): number {
  const a = runs.get(id) ?? []
  const b = runs.get(of) ?? []
  if (a.length === 0 || a.length !== b.length || ![...a, ...b].every(isResult)) return Number.NaN
  return middle(a.map((m, i) => m.reqPerSec / b[i].reqPerSec))
}

function baselineOf (group: Group): string {
  return ROWS.find(row => row.group === group)?.id as string
}

function table (rows: Row[], runs: Runs, results: Map<string, Measurement>, group: Group): string {
  const verify = group === 'one token' || group === MANY
  const jwt = verify ? `jwt-${group === 'one token' ? '1' : 'n'}` : ''
  const base = baselineOf(group)
  const lines = [
    `| server | req/s | ${verify ? '× bare | × @fastify/jwt' : '× by hand'} | p50 ms | p99 ms | RSS MiB | non-2xx / errors |`,
    `|---|--:|--:|${verify ? '--:|' : ''}--:|--:|--:|---|`
  ]
  for (const row of rows) {
    const m = results.get(row.id) as Measurement
    const ratios = [ratio(runs, row.id, base), ...(verify ? [ratio(runs, row.id, jwt)] : [])].map(r => Number.isNaN(r) ? 'n/a' : `${fmt(r, 2)}`)
    const status = m.failure !== undefined
      ? `⚠ failed: ${m.failure}`
      : isResult(m) ? '0' : `⚠ ${m.non2xx} / ${m.errors}: not a result`
    const reqs = isResult(m) ? fmt(m.reqPerSec) : `(${fmt(m.reqPerSec)})`
    lines.push(`| ${row.label} | ${reqs} | ${ratios.join(' | ')} | ${fmt(m.p50)} | ${fmt(m.p99)} | ${fmt(m.rss / 2 ** 20)} | ${status} |`)
  }
  return lines.join('\n')
}

interface Target {
  name: string
  judge: (runs: Runs, results: Map<string, Measurement>) => string | true
}

/** A target on the per-round ratio of `id` to `of`. */
function ratioTarget (name: string, id: string, of: string, min: number): Target {
  return {
    name,
    judge (runs) {
      const r = ratio(runs, id, of)
      if (Number.isNaN(r)) return 'a row it needs is flagged or missing'
      return r >= min ? true : `${fmt(r, 2)}×`
    }
  }
}

/** A target on two rows' median rounds: `test(a, b)` answers true or why not. */
function pairTarget (name: string, id: string, of: string, test: (a: Measurement, b: Measurement) => string | true): Target {
  return {
    name,
    judge (_runs, results) {
      const a = results.get(id)
      const b = results.get(of)
      if (!isResult(a) || !isResult(b)) return 'a row it needs is flagged or missing'
      return test(a as Measurement, b as Measurement)
    }
  }
}

const MIB = 2 ** 20
const TARGETS: Target[] = [
  ...(['1', 'n'] as const).flatMap(s => {
    const group = s === '1' ? 'one token' : MANY
    return [
      ratioTarget(`Redis (the default) ≥ 1.0× @fastify/jwt, ${group}`, `redis-${s}`, `jwt-${s}`, 1.0),
      pairTarget(`p99 of Redis (the default) ≤ 1.2× @fastify/jwt's, ${group}`, `redis-${s}`, `jwt-${s}`, (a, b) => a.p99 <= 1.2 * b.p99 ? true : `${a.p99} ms > 1.2 × ${b.p99} ms`),
      ratioTarget(`Redis + near cache ≥ 0.85× bare Fastify, ${group}`, `near-${s}`, `plain-${s}`, 0.85),
      ...['redis', 'redis-app', 'near', 'memory'].map(kind => pairTarget(`RSS of ${kind} ≤ @fastify/jwt's + 25 MiB, ${group}`, `${kind}-${s}`, `jwt-${s}`,
        (a, b) => a.rss <= b.rss + 25 * MIB ? true : `${fmt(a.rss / MIB)} MiB > ${fmt(b.rss / MIB)} + 25 MiB`))
    ]
  }),
  ratioTarget('login on Redis ≥ 0.9× by hand', 'login-redis', 'sign-set', 0.9),
  ratioTarget('refresh on Redis ≥ 0.9× by hand', 'refresh-redis', 'rotate-by-hand', 0.9)
]

// ---- main ----------------------------------------------------------------------

async function runMemory (): Promise<number> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'memory.ts'), ...positionals.slice(1)], { stdio: 'inherit' })
  return await new Promise(resolve => child.once('exit', code => resolve(code ?? 1)))
}

const execFileAsync = promisify(execFile)
const TSC = join(here, '..', 'node_modules', 'typescript', 'bin', 'tsc')

/** Compile lib/ as `npm run build` does, into BUILD_DIR. */
async function build (): Promise<void> {
  await execFileAsync(process.execPath, [TSC, '-p', join(here, '..', 'tsconfig.build.json'), '--outDir', BUILD_DIR])
}

/**
 * Compile lib/ as it was at a git ref (`--compare <ref>`), so that a change is measured
 * against its parent in one run, on the same machine state.
 */
async function buildRef (ref: string): Promise<string> {
  const dir = `${BUILD_DIR}-${ref.replace(/[^\w.-]/g, '_')}`
  const src = join(dir, 'src')
  await rm(dir, { recursive: true, force: true })
  await mkdir(src, { recursive: true })
  const root = join(here, '..')
  // What builds the package at that ref: `types/` held its type contract before it moved into lib/.
  const paths: string[] = []
  for (const path of ['lib', 'types', 'scripts', 'tsconfig.json', 'tsconfig.build.json']) {
    if (await execFileAsync('git', ['cat-file', '-e', `${ref}:${path}`], { cwd: root }).then(() => true, () => false)) paths.push(path)
  }
  const { stdout } = await execFileAsync('git', ['archive', '--format=tar', ref, ...paths], { cwd: root, encoding: 'buffer', maxBuffer: 64 * 2 ** 20 })
  await new Promise<void>((resolve, reject) => {
    const tar = spawn('tar', ['-x', '-C', src], { stdio: ['pipe', 'inherit', 'inherit'] })
    tar.once('exit', code => code === 0 ? resolve() : reject(new Error(`tar exited with ${code}`)))
    tar.stdin.end(stdout)
  })
  await execFileAsync(process.execPath, [TSC, '-p', join(src, 'tsconfig.build.json'), '--outDir', dir])
  return dir
}

/** Twins of the package's rows, served by the package as it was at `ref`. */
function comparisonRows (rows: Row[], ref: string, lib: string): Row[] {
  return rows.filter(row => row.server === 'revocable').map(row => ({ ...row, id: `${row.id}@${ref}`, label: `${row.label} @ ${ref}`, lib }))
}

async function main (): Promise<number> {
  if (positionals[0] === 'memory') return await runMemory()
  if (positionals.length > 0) throw new TypeError(`unknown command ${positionals[0]}: the only one is "memory"`)

  const only = flags.only
  // A comma list keeps the rows that match any of its names.
  const wanted = only?.split(',').filter(name => name !== '')
  let rows = wanted === undefined ? ROWS : ROWS.filter(row => wanted.some(name => row.id.includes(name) || row.server.includes(name)))
  await mkdir(RESULTS_DIR, { recursive: true })
  await build()
  if (flags.compare !== undefined) {
    const ref = flags.compare
    const twins = comparisonRows(rows, ref, await buildRef(ref))
    rows = rows.flatMap(row => [row, ...twins.filter(twin => twin.id === `${row.id}@${ref}`)])
  }

  const redis = await RedisServer.start()
  // A private PostgreSQL (as the tests start one: fsync off) only when a row needs it.
  const postgres = rows.some(row => row.env?.BENCH_STORE === 'postgres') ? await PostgresServer.start({ settings: { max_connections: 200 } }) : null
  const stopJwks = await serveJwks()
  const runs: Runs = new Map()
  try {
    for (let round = 0; round < rounds; round++) {
      // Reversing the order every other round spreads any drift of the machine over all rows.
      const order = round % 2 === 0 ? rows : [...rows].reverse()
      for (const row of order) {
        const m = await measure(row, redis, row.env?.BENCH_STORE === 'postgres' ? postgres : null)
        process.stderr.write(`round ${round + 1}/${rounds} ${row.id.padEnd(15)} ${fmt(m.reqPerSec).padStart(8)} req/s  p99 ${m.p99} ms${isResult(m) ? '' : '  ⚠ flagged'}\n`)
        runs.set(row.id, [...(runs.get(row.id) ?? []), m])
      }
    }
  } finally {
    await redis.close()
    await postgres?.close()
    await stopJwks()
  }

  const results = new Map([...runs].map(([id, list]) => [id, median(list)]))
  const cpu = cpus()
  const out: string[] = [
    `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}; autocannon in the same machine (and cores) as the servers.`,
    `${connections} connections, pipelining 1, ${warmup} s warm-up + ${duration} s measured per row, ${rounds} round(s); req/s, p50, p99 and RSS from the median round, ratios the median of the per-round ratios.`,
    ''
  ]
  for (const { group, title } of GROUPS) {
    const groupRows = rows.filter(row => row.group === group)
    if (groupRows.length === 0) continue
    out.push(`### ${title}`, '', table(groupRows, runs, results, group), '')
  }
  const flaggedIds = rows.filter(row => !isResult(results.get(row.id))).map(row => row.id)
  if (!smoke) {
    out.push('### Targets', '')
    for (const target of TARGETS) {
      const verdict = target.judge(runs, results)
      if (verdict === 'a row it needs is flagged or missing' && only !== undefined) continue
      out.push(`- ${verdict === true ? 'met' : `**missed** (${verdict})`}: ${target.name}`)
    }
    out.push('')
  }
  const report = out.join('\n')
  process.stdout.write(`${report}\n`)
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  await writeFile(join(RESULTS_DIR, `${smoke ? 'smoke' : 'bench'}-${stamp}.md`), `${report}\n`)
  await writeFile(join(RESULTS_DIR, `${smoke ? 'smoke' : 'bench'}-${stamp}.json`), JSON.stringify(Object.fromEntries(runs), null, 2))
  if (flaggedIds.length > 0) {
    process.stderr.write(`flagged (non-2xx, errors or no answer): ${flaggedIds.join(', ')}\n`)
    return 1
  }
  return 0
}

process.exitCode = await main()
