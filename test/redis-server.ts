// Private redis-server processes for the tests: each on a free port, in its own
// temporary directory, killed in teardown. The shared Redis on 6379 is never touched.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)
const START_TIMEOUT_MS = 10_000

function portIsFree (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * A free port whose cluster bus port (port + 10000) is free too. Chosen at random
 * in 20000–50000 so that parallel test files rarely race for the same one.
 */
export async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if (await portIsFree(port) && await portIsFree(port + 10_000)) return port
  }
  throw new Error('no free port found')
}

function isComplete (reply: string): boolean {
  const end = reply.indexOf('\r\n')
  if (end === -1) return false
  if (!reply.startsWith('$')) return true
  const length = Number(reply.slice(1, end))
  return length < 0 || Buffer.byteLength(reply) >= end + 2 + length + 2
}

/** Send one inline command and return the raw reply (or reject when nothing listens). */
export function rawCommand (port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('timeout')) }, timeoutMs)
    socket.setEncoding('utf8')
    socket.once('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (isComplete(reply)) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
}

/**
 * What the tests say when a Redis binary is missing, instead of an unhandled
 * `spawn redis-server ENOENT` (whose cause, a dump of the spawn arguments, adds nothing).
 */
function missingCommand (command: 'redis-server' | 'redis-cli'): Error {
  return new Error(`${command} is not on PATH: the Redis tests start private servers (apt-get install redis-server)`)
}

function isNotFound (err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT'
}

/** Poll `check` until it answers true; stop at once when `failed` reports why it never will. */
async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS, failed: () => Error | null = () => null): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const failure = failed()
    if (failure !== null) throw failure
    if (await check().catch(() => false)) return
    // Polling a process that is starting up; no clock to inject here.
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A redis-server that exited before answering: most often, its port was taken meanwhile. */
class ExitedWhileStarting extends Error {}

export interface RedisServerOptions {
  /** Keep data across a stop and restart (append-only file, fsync on every write). */
  persistent?: boolean
  /** Start the server with `--cluster-enabled yes`. */
  cluster?: boolean
}

export class RedisServer {
  readonly port: number
  readonly dir: string
  readonly #options: RedisServerOptions
  #process: ChildProcess | null = null

  private constructor (port: number, dir: string, options: RedisServerOptions) {
    this.port = port
    this.dir = dir
    this.#options = options
  }

  /** Start a private redis-server on a free port and wait until it answers. */
  static async start (options: RedisServerOptions = {}): Promise<RedisServer> {
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(await freePort(), await mkdtemp(join(tmpdir(), 'rjwt-redis-')), options)
      try {
        await server.restart()
        return server
      } catch (err) {
        await server.close()
        // Another process took the port between freePort() and the bind: try another one.
        if (!(err instanceof ExitedWhileStarting) || attempt === 3) throw err
      }
    }
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get running (): boolean {
    return this.#process !== null
  }

  /** (Re)start the server on the same port and directory. */
  async restart (): Promise<void> {
    if (this.#process !== null) throw new Error('redis-server is already running')
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--save', '',
      '--protected-mode', 'no'
    ]
    if (this.#options.persistent === true) {
      args.push('--appendonly', 'yes', '--appendfsync', 'always')
    } else {
      args.push('--appendonly', 'no')
    }
    if (this.#options.cluster === true) {
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, 'nodes.conf'), '--cluster-node-timeout', '5000')
    }
    const child = spawn('redis-server', args, { stdio: 'ignore' })
    this.#process = child
    // A missing binary is an 'error' event (unhandled, it crashes the test process);
    // a server that cannot start exits. Either ends the wait at once, saying why.
    let failure: Error | null = null
    child.once('error', err => {
      failure = isNotFound(err) ? missingCommand('redis-server') : err
      if (this.#process === child) this.#process = null
    })
    child.once('exit', (code, signal) => {
      failure ??= new ExitedWhileStarting(`redis-server on port ${this.port} exited (${signal ?? `code ${code}`}) before answering`)
      if (this.#process === child) this.#process = null
    })
    // Ready when our own process answers: a server of another test that took the port
    // between freePort() and the bind would answer PING just as well.
    const ours = `process_id:${child.pid}\r\n`
    await waitFor(`redis-server on port ${this.port}`, async () => (await rawCommand(this.port, 'INFO server')).includes(ours), START_TIMEOUT_MS, () => failure)
  }

  /** Stop the process with a signal and wait until it has exited. */
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
  }
}

export class RedisCluster {
  readonly nodes: RedisServer[]

  private constructor (nodes: RedisServer[]) {
    this.nodes = nodes
  }

  /** Three masters, no replicas, all 16384 slots assigned; resolves when cluster_state is ok on every node. */
  static async start (size = 3): Promise<RedisCluster> {
    const nodes: RedisServer[] = []
    try {
      for (let i = 0; i < size; i++) nodes.push(await RedisServer.start({ cluster: true }))
      await execFileAsync('redis-cli', [
        '--cluster', 'create', ...nodes.map(n => `127.0.0.1:${n.port}`),
        '--cluster-replicas', '0', '--cluster-yes'
      ], { timeout: 30_000 }).catch((err: unknown) => { throw isNotFound(err) ? missingCommand('redis-cli') : err })
      for (const node of nodes) {
        await waitFor(`cluster_state:ok on ${node.port}`, async () =>
          (await rawCommand(node.port, 'CLUSTER INFO')).includes('cluster_state:ok'), 30_000)
      }
    } catch (err) {
      await Promise.all(nodes.map(n => n.close()))
      throw err
    }
    return new RedisCluster(nodes)
  }

  get startupNodes (): Array<{ host: string, port: number }> {
    return this.nodes.map(n => ({ host: '127.0.0.1', port: n.port }))
  }

  async close (): Promise<void> {
    await Promise.all(this.nodes.map(n => n.close()))
  }
}
