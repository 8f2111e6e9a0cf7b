// The package as a user receives it, checked in `npm test` after the build:
//
// 1. the packaging linters: publint, and are-the-types-wrong with the "esm-only" profile
//    (the package is ESM; see the README's Compatibility for `require`);
// 2. the consumer test: `npm pack`, install the tarball into scratch apps with the
//    lowest and the highest fastify release of the peer range, type-check the README's
//    Quick start there (strict, exactOptionalPropertyTypes, skipLibCheck off) as an ES
//    module and as a CommonJS module, and run both: boot, log in, a protected request,
//    a refresh.
//
// The Quick start is read from README.md itself, so the README and this test cannot
// drift apart. Every failure ends with one line saying which step broke, and where.
import { spawn } from 'node:child_process'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const keep = process.env.KEEP_SCRATCH !== undefined

/** A failed step: `summary` is the one line printed last, the message carries the output. */
class StepError extends Error {
  constructor (message, summary = message.split('\n')[0]) {
    super(message)
    this.summary = summary
  }
}

/** Run a command; resolve to its output, or throw a StepError carrying the output. */
function run (step, command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, ...options, env: { ...process.env, ...options.env } })
    let output = ''
    child.stdout.on('data', chunk => { output += chunk })
    child.stderr.on('data', chunk => { output += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000)
    child.on('error', err => { clearTimeout(timer); reject(new StepError(`${step}: ${err.message}`)) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new StepError(`${step} failed (${signal ?? `exit ${code}`}): ${command} ${args.join(' ')}\n${output.trim()}`))
    })
  })
}

/** The first ```ts block of the README's "## Quick start" section, split into its imports and the rest. */
function quickStart (readme) {
  const section = /^## Quick start\n([\s\S]*?)(?=^## )/m.exec(readme)
  if (section === null) throw new StepError('README.md has no "## Quick start" section')
  const block = /^```ts\n([\s\S]*?)^```/m.exec(section[1])
  if (block === null) throw new StepError('README.md\'s Quick start has no ```ts code block')
  const lines = block[1].split('\n')
  let end = 0
  while (end < lines.length && (lines[end].startsWith('import ') || lines[end].trim() === '')) end++
  const imports = lines.slice(0, end).join('\n').trim()
  if (imports === '') throw new StepError('README.md\'s Quick start imports nothing from the package')
  return { imports, body: lines.slice(end).join('\n').trim() }
}

// What the Quick start leaves to the app (its user registry), and what the test then does.
const REGISTRY = `
const users = new Map([['ada@example.com', { id: 'user-1', password: 'correct horse battery staple' }]])
async function findUserId (email: string): Promise<string | null> {
  return users.get(email)?.id ?? null
}
async function checkPassword (userId: string, password: string): Promise<boolean> {
  return [...users.values()].some(user => user.id === userId && user.password === password)
}
`
const EXERCISE = `
function expect (what: string, ok: boolean, detail: unknown): void {
  if (!ok) throw new Error(\`Quick start: \${what}: \${JSON.stringify(detail)}\`)
}
const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'ada@example.com', password: 'correct horse battery staple' } })
expect('login answers 200', login.statusCode === 200, login.json())
const { accessToken } = login.json() as { accessToken: string }
const me = await app.inject({ url: '/me', headers: { authorization: \`Bearer \${accessToken}\` } })
expect('a protected request with the token answers 200 { id }', me.statusCode === 200 && me.json().id === 'user-1', me.json())
const anonymous = await app.inject({ url: '/me' })
expect('a protected request without a token answers 401 TOKEN_MISSING', anonymous.statusCode === 401 && anonymous.json().code === 'TOKEN_MISSING', anonymous.json())
const cookie = login.cookies.find(c => c.name === 'refresh_token')
expect('login sets the refresh cookie', cookie !== undefined, login.headers['set-cookie'])
const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: cookie!.value } })
expect('refresh answers 200', refreshed.statusCode === 200, refreshed.json())
await app.close()
console.log('quick start ran: login, /me, refresh')
`

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: false,
    esModuleInterop: true,
    types: ['node'],
    outDir: 'out'
  },
  files: ['esm.ts', 'cjs.cts']
}

// CommonJS without the `await` on register: `app.revocableJwt` does not exist yet when
// the route is declared. It must stop the program at that line, before any request is
// served, never boot with an unprotected route.
const FORGOT_AWAIT = `const Fastify = require('fastify')
const revocableJwt = require('fastify-revocable-jwt')
const app = Fastify()
app.register(revocableJwt, { secret: process.env.JWT_SECRET })
app.get('/me', { onRequest: app.revocableJwt.authenticate }, async (request) => ({ id: request.auth.userId }))
app.listen({ port: 0 }).then(() => { console.log('BOOTED'); return app.close() })
`

async function scratchApp (dir, tarball, fastifyVersion, code) {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }))
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
  // An ES module: the Quick start as written (top-level await).
  await writeFile(join(dir, 'esm.ts'), `${code.imports}\n${REGISTRY}\n${code.body}\n${EXERCISE}`)
  // CommonJS: the same code inside an async function, as the README tells CommonJS users.
  await writeFile(join(dir, 'forgot-await.cjs'), FORGOT_AWAIT)
  await writeFile(join(dir, 'cjs.cts'), `${code.imports}\n${REGISTRY}\nasync function main (): Promise<void> {\n${code.body}\n${EXERCISE}\n}\nmain().catch((err: unknown) => { console.error(err); process.exitCode = 1 })\n`)
  const where = `fastify ${fastifyVersion} (${dir})`
  await run(`npm install in the scratch app with ${where}`, 'npm', [
    'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error',
    tarball, `fastify@${fastifyVersion}`, `@types/node@${pkg.devDependencies['@types/node']}`
  ], { cwd: dir })
  await run(`type-check of the README's Quick start with ${where}`, process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir })
  const env = { JWT_SECRET: 'a-secret-of-at-least-32-bytes-for-the-test' }
  for (const [kind, file] of [['ES module', 'out/esm.js'], ['CommonJS', 'out/cjs.cjs']]) {
    const output = await run(`the README's Quick start as ${kind} with ${where}`, process.execPath, [file], { cwd: dir, env, timeoutMs: 60_000 })
    if (!output.includes('quick start ran')) throw new StepError(`the README's Quick start as ${kind} with ${where} printed no result:\n${output}`)
    console.log(`consumer test: fastify ${fastifyVersion}, ${kind}: type-checks and runs`)
  }
  const forgot = await run('forgot-await.cjs', process.execPath, ['forgot-await.cjs'], { cwd: dir, env, timeoutMs: 60_000 }).then(
    output => { throw new StepError(`CommonJS without await on register booted instead of failing at the route (fastify ${fastifyVersion}):\n${output}`) },
    err => err.message)
  if (forgot.includes('BOOTED') || !forgot.includes('forgot-await.cjs:5') || !forgot.includes("reading 'authenticate'")) {
    throw new StepError(`CommonJS without await on register did not fail at the line that reads app.revocableJwt (fastify ${fastifyVersion}):\n${forgot}`)
  }
  console.log(`consumer test: fastify ${fastifyVersion}, CommonJS without await on register: stops at the route, as the README says`)
}

async function main () {
  const scratch = await mkdtemp(join(tmpdir(), 'revocable-jwt-consumer-'))
  try {
    await run('publint', process.execPath, [join(root, 'node_modules', 'publint', 'src', 'cli.js'), '--strict'])
    console.log('publint: no problems')
    // attw exits non-zero on any problem outside the ignored resolutions: node10 (no
    // "exports" support, so no subpaths) and node16 from CommonJS (TypeScript's node16
    // refuses a static import of ESM; module node20/nodenext accept require(esm)).
    await run('are-the-types-wrong (attw --pack . --profile esm-only)', process.execPath, [
      join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'), '--pack', '.', '--profile', 'esm-only', '--no-color', '--format', 'ascii'
    ])
    console.log('are-the-types-wrong (esm-only profile): no problems')

    const code = quickStart(await readFile(join(root, 'README.md'), 'utf8'))
    const packed = JSON.parse(await run('npm pack', 'npm', ['pack', '--json', '--pack-destination', scratch]))
    const tarball = join(scratch, packed[0].filename)
    const versions = JSON.parse(await run('npm view fastify versions', 'npm', ['view', `fastify@${pkg.peerDependencies.fastify}`, 'version', '--json']))
    // npm lists them in publication order, not by version.
    const byVersion = (a, b) => a.split('.').map(Number).reduce((order, part, i) => order || part - Number(b.split('.')[i]), 0)
    const inRange = (Array.isArray(versions) ? versions : [versions]).filter(v => !v.includes('-')).sort(byVersion)
    const [lowest, highest] = [inRange[0], inRange.at(-1)]
    // Both apps at once, sharing npm's cache; each runs to its end before the scratch
    // directory is removed, and every failure is reported.
    const results = await Promise.allSettled([...new Set([lowest, highest])].map(version => scratchApp(join(scratch, `fastify-${version}`), tarball, version, code)))
    const failures = results.filter(result => result.status === 'rejected').map(result => result.reason)
    const unexpected = failures.find(err => !(err instanceof StepError))
    if (unexpected !== undefined) throw unexpected
    if (failures.length > 0) throw new StepError(failures.map(err => err.message).join('\n\n'), failures.map(err => err.summary).join('\n'))
  } finally {
    if (keep) console.log(`scratch apps kept in ${scratch}`)
    else await rm(scratch, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch(err => {
    if (!(err instanceof StepError)) throw err
    console.error(`${err.message}\n`)
    for (const line of err.summary.split('\n')) console.error(`package check FAILED: ${line}`)
    if (!keep) console.error('(KEEP_SCRATCH=1 npm run test:package keeps the scratch apps to look into)')
    process.exitCode = 1
  })
}
