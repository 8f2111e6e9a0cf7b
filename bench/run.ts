// `npm run bench`: every server in its own child process on a free loopback port,
// loaded in turn by autocannon from this process, compared in one markdown table.
//
//   npm run bench                                  full run (BENCH_DURATION s per row, default 5)
//   npm run bench -- --rounds 3                    median of 3 rounds, order reversed every other round
//   npm run bench -- --only redis --profile        rows whose name matches, servers run with --cpu-prof
//   npm run bench -- --compare HEAD~1              adds the package's rows served by lib/ as it was at a git ref
//   BENCH_DURATION=1 npm run bench -- --smoke      every server briefly; exit 0 iff all answered 2xx
//   npm run bench -- memory                        the memory store's bytes per revoked jti (bench/memory.ts)
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import autocannon from 'autocannon'
import { RedisServer, rawCommand } from '../test/redis-server.js'
import { makeTokens, type BenchToken, type FromServer, type ToServer } from './common.js'

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
const DISTINCT_USERS = 10_000
/** verifyCacheSize of the extra rows that show a cache smaller than the 10,000 live tokens. */
const SIZED_VERIFY_CACHE = 1000
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

type Group = 'one token' | `${number} users` | 'issuance'
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
  /** The row the ratio column divides by, in the same group. */
  baseline: string
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

let oneToken: BenchToken
let manyTokens: BenchToken[]

function bearerOne (): Promise<LoadPlan> {
  // No setupRequest: autocannon builds this request once and resends the same bytes.
  return Promise.resolve({ options: { requests: [{ method: 'GET', path: '/me', headers: { authorization: `Bearer ${oneToken.token}` } }] } })
}

function bearerRoundRobin (): Promise<LoadPlan> {
  let next = 0
  const headers = manyTokens.map(t => ({ authorization: `Bearer ${t.token}` }))
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

const REDIS = { BENCH_STORE: 'redis' }
const MEMORY = { BENCH_STORE: 'memory' }

function verifyRows (group: Group, load: () => Promise<LoadPlan>): Row[] {
  const suffix = group === 'one token' ? '1' : 'n'
  const baseline = `jwt-${suffix}`
  return [
    { id: `plain-${suffix}`, group, label: '1. fastify, no auth (ceiling)', server: 'fastify-plain', baseline, load },
    { id: baseline, group, label: '2. fastify + @fastify/jwt `jwtVerify()`', server: 'fastify-jwt', baseline, load },
    { id: `memory-${suffix}`, group, label: '3. fastify-revocable-jwt, memory stores', server: 'revocable', env: MEMORY, baseline, load },
    { id: `redis-${suffix}`, group, label: '4. fastify-revocable-jwt, Redis stores', server: 'revocable', env: REDIS, baseline, load },
    { id: `express-${suffix}`, group, label: '5. express + jsonwebtoken + Redis GET', server: 'express-redis', baseline, load }
  ]
}

/** With a verifyCacheSize of 1000 no token of 10,000 in turn is ever still cached: what an undersized cache costs. */
function sizedCacheRows (): Row[] {
  const env = { BENCH_VERIFY_CACHE: String(SIZED_VERIFY_CACHE) }
  const size = SIZED_VERIFY_CACHE.toLocaleString('en-US')
  return [
    { id: 'memory-n-cache', group: MANY, label: `3. fastify-revocable-jwt, memory stores, \`verifyCacheSize: ${size}\``, server: 'revocable', env: { ...MEMORY, ...env }, baseline: 'jwt-n', load: bearerRoundRobin },
    { id: 'redis-n-cache', group: MANY, label: `4. fastify-revocable-jwt, Redis stores, \`verifyCacheSize: ${size}\``, server: 'revocable', env: { ...REDIS, ...env }, baseline: 'jwt-n', load: bearerRoundRobin }
  ]
}

const ROWS: Row[] = [
  ...verifyRows('one token', bearerOne),
  ...verifyRows(MANY, bearerRoundRobin),
  ...sizedCacheRows(),
  { id: 'sign-set', group: 'issuance', label: 'fastify: sign a JWT + one Redis SET', server: 'sign-set', baseline: 'sign-set', load: loginRoundRobin },
  { id: 'login-memory', group: 'issuance', label: 'login `reply.issueTokens`, memory', server: 'revocable', env: MEMORY, baseline: 'sign-set', load: loginRoundRobin },
  { id: 'login-redis', group: 'issuance', label: 'login `reply.issueTokens`, Redis', server: 'revocable', env: REDIS, baseline: 'sign-set', load: loginRoundRobin },
  { id: 'refresh-memory', group: 'issuance', label: 'refresh `POST /auth/refresh`, memory', server: 'revocable', env: MEMORY, baseline: 'sign-set', load: refreshChains },
  { id: 'refresh-redis', group: 'issuance', label: 'refresh `POST /auth/refresh`, Redis', server: 'revocable', env: REDIS, baseline: 'sign-set', load: refreshChains }
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

async function startServer (row: Row, redisUrl: string): Promise<RunningServer> {
  const execArgv = ['--import', 'tsx']
  if (flags.profile === true) {
    // One directory per row: tsx's loader thread writes a profile of its own next to the main thread's.
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles', row.id)}`)
  }
  const child = fork(join(here, 'servers', `${row.server}.ts`), [], {
    execArgv,
    env: { ...process.env, ...row.env, BENCH_REDIS_URL: redisUrl, BENCH_LIB: pathToFileURL(join(row.lib ?? BUILD_DIR, 'lib')).href + '/', NODE_ENV: 'production' },
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

async function measure (row: Row, redis: RedisServer): Promise<Measurement> {
  // Every Redis row starts from an empty database.
  await rawCommand(redis.port, 'FLUSHALL')
  let server: RunningServer | undefined
  try {
    server = await startServer(row, redis.url)
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

function table (rows: Row[], results: Map<string, Measurement>): string {
  const lines = [
    '| server | req/s | ratio | p50 ms | p99 ms | RSS MB | non-2xx / errors |',
    '|---|--:|--:|--:|--:|--:|---|'
  ]
  for (const row of rows) {
    const m = results.get(row.id) as Measurement
    const base = results.get(row.baseline)
    const ratio = isResult(m) && isResult(base) ? `${fmt(m.reqPerSec / (base as Measurement).reqPerSec, 2)}×` : 'n/a'
    const status = m.failure !== undefined
      ? `⚠ failed: ${m.failure}`
      : isResult(m) ? '0' : `⚠ ${m.non2xx} / ${m.errors}: not a result`
    const reqs = isResult(m) ? fmt(m.reqPerSec) : `(${fmt(m.reqPerSec)})`
    lines.push(`| ${row.label} | ${reqs} | ${ratio} | ${fmt(m.p50)} | ${fmt(m.p99)} | ${fmt(m.rss / 2 ** 20)} | ${status} |`)
  }
  return lines.join('\n')
}

interface Target {
  name: string
  judge: (r: (id: string) => Measurement | undefined) => string | true
}

/** A target comparing row `id` with row `of`; judged only when both rows are results. */
function pairTarget (name: string, id: string, of: string, compare: (a: Measurement, b: Measurement) => string | true): Target {
  return {
    name,
    judge (r) {
      const a = r(id)
      const b = r(of)
      if (a === undefined || b === undefined || !isResult(a) || !isResult(b)) return 'a row it needs is flagged or missing'
      return compare(a, b)
    }
  }
}

function ratioTarget (name: string, id: string, of: string, min: number): Target {
  return pairTarget(name, id, of, (a, b) => {
    const ratio = a.reqPerSec / b.reqPerSec
    return ratio >= min ? true : `${fmt(ratio, 2)}×`
  })
}

function p99Target (name: string, id: string, of: string): Target {
  return pairTarget(name, id, of, (a, b) => a.p99 <= b.p99 ? true : `${a.p99} ms > ${b.p99} ms`)
}

const TARGETS: Target[] = [
  ratioTarget('(4) Redis ≥ 1.0× (2) @fastify/jwt, one token', 'redis-1', 'jwt-1', 1.0),
  ratioTarget(`(4) Redis ≥ 1.0× (2) @fastify/jwt, ${MANY}`, 'redis-n', 'jwt-n', 1.0),
  ratioTarget('(3) memory ≥ 1.3× (2) @fastify/jwt, one token', 'memory-1', 'jwt-1', 1.3),
  ratioTarget(`(3) memory ≥ 1.3× (2) @fastify/jwt, ${MANY}`, 'memory-n', 'jwt-n', 1.3),
  p99Target('p99 of (4) ≤ p99 of (2), one token', 'redis-1', 'jwt-1'),
  p99Target(`p99 of (4) ≤ p99 of (2), ${MANY}`, 'redis-n', 'jwt-n'),
  ratioTarget('(4) ≥ 10× (5) express, one token', 'redis-1', 'express-1', 10),
  ratioTarget(`(4) ≥ 10× (5) express, ${MANY}`, 'redis-n', 'express-n', 10),
  ratioTarget('login on Redis ≥ 0.9× sign + SET', 'login-redis', 'sign-set', 0.9),
  ratioTarget('refresh on Redis ≥ 0.9× sign + SET', 'refresh-redis', 'sign-set', 0.9)
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
  let rows = only === undefined ? ROWS : ROWS.filter(row => row.id.includes(only) || row.server.includes(only))
  oneToken = makeTokens(1)[0]
  manyTokens = makeTokens(DISTINCT_USERS)
  await mkdir(RESULTS_DIR, { recursive: true })
  await build()
  if (flags.compare !== undefined) {
    const ref = flags.compare
    const twins = comparisonRows(rows, ref, await buildRef(ref))
    rows = rows.flatMap(row => [row, ...twins.filter(twin => twin.id === `${row.id}@${ref}`)])
  }

  const redis = await RedisServer.start()
  const runs = new Map<string, Measurement[]>()
  try {
    for (let round = 0; round < rounds; round++) {
      // Reversing the order every other round spreads any drift of the machine over all rows.
      const order = round % 2 === 0 ? rows : [...rows].reverse()
      for (const row of order) {
        const m = await measure(row, redis)
        process.stderr.write(`round ${round + 1}/${rounds} ${row.id.padEnd(15)} ${fmt(m.reqPerSec).padStart(8)} req/s  p99 ${m.p99} ms${isResult(m) ? '' : '  ⚠ flagged'}\n`)
        runs.set(row.id, [...(runs.get(row.id) ?? []), m])
      }
    }
  } finally {
    await redis.close()
  }

  const results = new Map([...runs].map(([id, list]) => [id, median(list)]))
  const cpu = cpus()
  const out: string[] = [
    `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}; autocannon in the same machine (and cores) as the servers.`,
    `${connections} connections, pipelining 1, ${warmup} s warm-up + ${duration} s measured per row, ${rounds} round(s)${rounds > 1 ? ' (median)' : ''}.`,
    ''
  ]
  for (const group of ['one token', MANY, 'issuance'] as Group[]) {
    const groupRows = rows.filter(row => row.group === group)
    if (groupRows.length === 0) continue
    const title = group === 'issuance' ? 'Issuance, ratio to "sign a JWT + one Redis SET"' : `GET /me, ${group}, ratio to @fastify/jwt`
    out.push(`### ${title}`, '', table(groupRows, results), '')
  }
  const flaggedIds = rows.filter(row => !isResult(results.get(row.id))).map(row => row.id)
  if (!smoke) {
    out.push('### Targets', '')
    for (const target of TARGETS) {
      const verdict = target.judge(id => results.get(id))
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
