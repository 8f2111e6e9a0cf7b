// Private PostgreSQL servers for the tests: each in its own temporary directory,
// listening on a free port on 127.0.0.1 only, killed and removed in teardown. The
// shared instance on 5432 is never touched.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { constants, rmSync } from 'node:fs'
import { access, chown, mkdtemp, readdir, realpath, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort } from './redis-server.js'

const execFileAsync = promisify(execFile)
const START_TIMEOUT_MS = 30_000
const SUPERUSER = 'postgres'
const READY = 'database system is ready to accept connections'
const HINT = '(apt-get install postgresql, or set PG_BIN to their directory)'
// The server's messages are matched by their English text.
const ENV = { ...process.env, LC_ALL: 'C' }

/**
 * Durability traded for speed, none of which a test needs: with `fsync` and
 * `full_page_writes` off, data written before a SIGKILL still survives it (the
 * kernel holds the writes), only a machine crash could lose it.
 * `synchronous_commit` stays on: with it off a commit returns before its WAL is
 * written, and a SIGKILL right after loses it, which is the outage the tests model.
 */
const SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  full_page_writes: 'off',
  lc_messages: 'C'
}

export interface PostgresServerOptions {
  /** Extra server settings, passed as `-c name=value` after (and over) the defaults. */
  settings?: Record<string, string | number>
}

interface RunAs { uid: number, gid: number }

async function hasServer (dir: string): Promise<boolean> {
  try {
    await Promise.all(['initdb', 'postgres'].map(name => access(join(dir, name), constants.X_OK)))
    return true
  } catch {
    return false
  }
}

/**
 * The directory holding initdb and postgres: PG_BIN, else the one an initdb on PATH
 * links into, else Debian's /usr/lib/postgresql/<major>/bin, newest first (Debian
 * puts neither on PATH).
 */
export async function findBinDir (env: NodeJS.ProcessEnv = process.env, debianRoot = '/usr/lib/postgresql'): Promise<string> {
  const fromEnv = env.PG_BIN
  if (fromEnv !== undefined && fromEnv !== '') {
    if (await hasServer(fromEnv)) return fromEnv
    throw new Error(`PostgreSQL server binaries not found in PG_BIN=${fromEnv} ${HINT}`)
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const initdb = await realpath(join(dir, 'initdb')).catch(() => null)
    if (initdb !== null && await hasServer(dirname(initdb))) return dirname(initdb)
  }
  const majors = await readdir(debianRoot).catch(() => [])
  for (const major of majors.sort((a, b) => Number(b) - Number(a))) {
    const dir = join(debianRoot, major, 'bin')
    if (await hasServer(dir)) return dir
  }
  throw new Error(`PostgreSQL server binaries not found ${HINT}`)
}

/** PostgreSQL refuses to run as root; as root, run it as `postgres` (Debian's), else `nobody`. */
async function unprivilegedUser (): Promise<RunAs | null> {
  if (process.getuid?.() !== 0) return null
  for (const name of ['postgres', 'nobody']) {
    const { stdout } = await execFileAsync('getent', ['passwd', name]).catch(() => ({ stdout: '' }))
    const [, , uid, gid] = stdout.trim().split(':')
    if (uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) }
  }
  throw new Error('running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as')
}

/**
 * The command line that runs `file` as `runAs`. setpriv switches user and then
 * execs, so the process we spawn and signal is the program itself; runuser and su
 * stay in between as its parent, and a SIGKILL would orphan the server instead.
 */
function asUser (runAs: RunAs | null, file: string, args: string[]): [string, string[]] {
  if (runAs === null) return [file, args]
  return ['setpriv', [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups', '--', file, ...args]]
}

// Teardown that did not run (a failed or killed test file) must not leave servers behind.
const running = new Set<ChildProcess>()
const leftovers = new Set<string>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
  for (const dir of leftovers) rmSync(dir, { recursive: true, force: true })
})

/** A new directory under os.tmpdir(), which the unprivileged user must be able to reach (/tmp is). */
async function ownedTempDir (prefix: string, runAs: RunAs | null): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  leftovers.add(dir)
  if (runAs !== null) await chown(dir, runAs.uid, runAs.gid)
  return dir
}

function lastLines (log: string, count = 5): string {
  return log.trim().split('\n').slice(-count).join(' | ')
}

interface Setup { bin: string, runAs: RunAs | null, template: string }

/**
 * initdb takes over a second; copying its result takes about a tenth of that. So
 * each test process runs initdb once, into a template, and copies it per server.
 */
async function createSetup (): Promise<Setup> {
  const bin = await findBinDir()
  const runAs = await unprivilegedUser()
  const dir = await ownedTempDir('rjwt-pg-template-', runAs)
  const template = join(dir, 'data')
  const [file, args] = asUser(runAs, join(bin, 'initdb'), [
    '--pgdata', template, '--username', SUPERUSER, '--auth', 'trust',
    '--encoding', 'UTF8', '--locale', 'C', '--no-sync'
  ])
  try {
    await execFileAsync(file, args, { env: ENV, timeout: 60_000 })
  } catch (err) {
    throw new Error(`initdb failed: ${lastLines((err as { stderr?: string }).stderr ?? String(err))}`, { cause: err })
  }
  return { bin, runAs, template }
}

let setup: Promise<Setup> | null = null

export class PostgresServer {
  readonly port: number
  readonly dir: string
  /** The superuser, trusted without a password. */
  readonly user = SUPERUSER
  readonly #setup: Setup
  readonly #settings: string[]
  #process: ChildProcess | null = null

  private constructor (port: number, dir: string, setup: Setup, options: PostgresServerOptions) {
    this.port = port
    this.dir = dir
    this.#setup = setup
    this.#settings = Object.entries({ ...SETTINGS, ...options.settings }).flatMap(([name, value]) => ['-c', `${name}=${value}`])
  }

  /** Start a private server on a free port and wait until it accepts connections. */
  static async start (options: PostgresServerOptions = {}): Promise<PostgresServer> {
    setup ??= createSetup()
    const ready = await setup
    const dir = await ownedTempDir('rjwt-pg-', ready.runAs)
    try {
      // cp -a keeps the owner and the 0700 mode PostgreSQL insists on.
      await execFileAsync('cp', ['-a', ready.template, join(dir, 'data')])
      const server = new PostgresServer(await freePort(), dir, ready, options)
      await server.restart()
      return server
    } catch (err) {
      await rm(dir, { recursive: true, force: true })
      leftovers.delete(dir)
      throw err
    }
  }

  /** The URL of the default `postgres` database. */
  get url (): string {
    return this.urlFor('postgres')
  }

  urlFor (database: string): string {
    return `postgres://${this.user}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`
  }

  get running (): boolean {
    return this.#process !== null
  }

  /** Create a database and return its URL. */
  async createDatabase (name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url })
    await client.connect()
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`)
    } finally {
      await client.end()
    }
    return this.urlFor(name)
  }

  /** (Re)start the server on the same port and data directory. */
  async restart (): Promise<void> {
    if (this.#process !== null) throw new Error('postgres is already running')
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      try {
        return await this.#spawn(deadline)
      } catch (err) {
        // After a SIGKILL the old server's other processes exit by themselves once
        // they see it gone, and PostgreSQL will not start while one of them is still
        // attached to the old shared memory. They send us no event: poll, bounded.
        if (!(err as Error).message.includes('pre-existing shared memory block') || Date.now() > deadline) throw err
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    }
  }

  #spawn (deadline: number): Promise<void> {
    const [file, args] = asUser(this.#setup.runAs, join(this.#setup.bin, 'postgres'), [
      '-D', join(this.dir, 'data'), '-p', String(this.port), '-k', this.dir, ...this.#settings
    ])
    const child = spawn(file, args, { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] })
    this.#process = child
    running.add(child)
    child.once('exit', () => {
      running.delete(child)
      if (this.#process === child) this.#process = null
    })
    return new Promise((resolve, reject) => {
      let log = ''
      let starting = true
      const fail = (message: string): void => {
        if (!starting) return
        starting = false
        clearTimeout(timer)
        child.kill('SIGKILL')
        reject(new Error(`${message}: ${lastLines(log)}`))
      }
      const timer = setTimeout(() => fail(`postgres on port ${this.port} was not ready within ${START_TIMEOUT_MS} ms`), deadline - Date.now())
      child.stderr.setEncoding('utf8')
      // The server logs to this pipe for as long as it runs: keep reading it, or it
      // fills up and the server blocks on its next log line.
      child.stderr.on('data', (chunk: string) => {
        log = (log + chunk).slice(-8192)
        if (starting && log.includes(READY)) {
          starting = false
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('error', (err) => fail(`could not run ${file}: ${err.message}`))
      child.once('exit', (code, signal) => fail(`postgres exited with ${code ?? signal} while starting`))
    })
  }

  /**
   * Signal the server and wait until it has exited. SIGKILL (the default) is a
   * crash; SIGINT is PostgreSQL's fast shutdown, SIGTERM its smart one, which waits
   * for every client to disconnect.
   */
  async stop (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#process
    if (child === null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill(signal)
    await exited
    this.#process = null
  }

  /** Stop the server and remove its directory. */
  async close (): Promise<void> {
    await this.stop('SIGKILL')
    await rm(this.dir, { recursive: true, force: true })
    leftovers.delete(this.dir)
  }
}
