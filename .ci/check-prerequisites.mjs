// The first step of `npm test`: what the tests need from this machine, said in one
// line each, before 2,000 lines of test output can bury it. A missing requirement
// stops the run here (exit 1); an optional one that is absent says which tests it
// skips. Runs on plain Node, before the build, so it imports nothing.
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'

// package.json's engines field, ">=20.19.0", is the one place the minimum is written.
const engines = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node
const MIN_NODE = /^>=\s*(\d+)\.(\d+)/.exec(engines).slice(1).map(Number)
// The same rules as test/browser/setup.ts, which skips the browser tests without Chromium outside CI.
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const inCi = process.env.CI !== undefined

const failures = []
const notes = []

function onPath (command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {}
  }
  return false
}

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
  failures.push(`Node ${MIN_NODE.join('.')} or newer is needed, this is ${process.versions.node}`)
}

if (!existsSync(new URL('../node_modules/.bin/tap', import.meta.url))) {
  failures.push('the dev dependencies are not installed (run npm ci)')
}

const redis = ['redis-server', 'redis-cli'].filter(command => !onPath(command))
if (redis.length > 0) {
  failures.push(`${redis.join(' and ')} not on PATH: the Redis tests start private servers (apt-get install redis-server)`)
}

// The same places as findBinDir in test/postgres-server.ts: PG_BIN, PATH, then Debian's
// /usr/lib/postgresql/<major>/bin, which is not on PATH.
function hasPostgres () {
  const dirs = process.env.PG_BIN ? [process.env.PG_BIN] : (process.env.PATH ?? '').split(delimiter).filter(Boolean)
  if (!process.env.PG_BIN) {
    try {
      for (const major of readdirSync('/usr/lib/postgresql')) dirs.push(join('/usr/lib/postgresql', major, 'bin'))
    } catch {}
  }
  return dirs.some(dir => ['initdb', 'postgres'].every(command => {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {
      return false
    }
  }))
}

if (!hasPostgres()) {
  failures.push(`the PostgreSQL server binaries (initdb, postgres) were not found${process.env.PG_BIN ? ` in PG_BIN=${process.env.PG_BIN}` : ''}: the PostgreSQL tests start private servers (apt-get install postgresql, or set PG_BIN)`)
}

if (!existsSync(CHROMIUM_PATH)) {
  const why = `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`
  if (inCi) failures.push(`${why}; under CI the browser tests may not be skipped`)
  else notes.push(`browser tests: SKIPPED — ${why}`)
}

if (process.env.MONGODB_URL === undefined || process.env.MONGODB_URL === '') {
  notes.push('MongoDB integration tests: SKIPPED — MONGODB_URL is not set')
}

if (failures.length > 0) {
  for (const failure of failures) console.error(`npm test cannot run: ${failure}`)
  process.exitCode = 1
} else {
  for (const note of notes) console.log(note)
}
