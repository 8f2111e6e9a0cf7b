// Example servers as real processes on free ports (tsx, as `npm run example*` runs
// them): for the tests whose point is several instances or services over HTTP.
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { freePort } from './redis-server.js'

export interface ServerProcess {
  base: string
  port: number
  process: ChildProcess
}

const START_TIMEOUT_MS = 90_000

/**
 * Start `script` with `env` (PORT and HOST are set here) and resolve once it answers
 * HTTP on its port; a process that exits first rejects at once.
 */
export async function startServerProcess (script: string, env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort()
  const child = spawn(join(process.cwd(), 'node_modules/.bin/tsx'), [script], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const base = `http://127.0.0.1:${port}`
  const exited = new Promise<never>((_resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${String(code)} before it listened`)))
  })
  exited.catch(() => {})
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    try {
      await Promise.race([fetch(base), exited])
      return { base, port, process: child }
    } catch (err) {
      if (child.exitCode !== null) throw err
      // Not listening yet: a starting process has no event to wait for but its port.
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  child.kill('SIGKILL')
  throw new Error(`${script} did not listen within ${START_TIMEOUT_MS} ms`)
}

/** Stop a server process with SIGTERM and wait until it has exited. */
export async function stopServerProcess (server: ServerProcess): Promise<void> {
  if (server.process.exitCode !== null || server.process.signalCode !== null) return
  const exited = new Promise(resolve => server.process.once('exit', resolve))
  server.process.kill('SIGTERM')
  await exited
}
