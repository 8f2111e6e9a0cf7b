import { createSigner } from 'fast-jwt'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build as buildExample, type BuildOptions, type ExampleEnv } from '../example/app.js'

/** A fixed test secret (32+ bytes). */
export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!'

/** A controllable clock for the refresh-token store and grace window. */
export class TestClock {
  current = Date.now()
  now = (): number => this.current
  advance (ms: number): void { this.current += ms }
}

let storeEnv: () => Promise<ExampleEnv> = async () => ({})

/**
 * Give every app that `build()` makes more environment, under the test's own: a test
 * file that runs the example's contract on a real store server names it here.
 */
export function setStoreEnv (env: () => Promise<ExampleEnv>): void {
  storeEnv = env
}

/** The example app, unstarted, with a fixed secret and plain-http-friendly defaults. */
export async function build (opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = await buildExample({
    ...opts,
    env: { JWT_SECRET: TEST_SECRET, ...await storeEnv(), ...opts.env }
  })
  await app.ready()
  return app
}

export interface Session {
  accessToken: string
  /** The refresh cookie's value. */
  refreshToken: string
  userId: string
  email: string
}

let counter = 0

/** Register a fresh user and log in; returns the access token and refresh cookie. */
export async function registerAndLogin (app: FastifyInstance, password = 'correct horse battery', headers: Record<string, string> = {}): Promise<Session> {
  const email = `user${++counter}-${process.pid}@example.com`
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } })
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.statusCode} ${reg.body}`)
  const session = await login(app, email, password, headers)
  return { ...session, userId: reg.json().id, email }
}

export async function login (app: FastifyInstance, email: string, password: string, headers: Record<string, string> = {}): Promise<Omit<Session, 'userId' | 'email'>> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, headers })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return { accessToken: res.json().accessToken, refreshToken: refreshCookie(res) as string }
}

/** The value of the refresh cookie set by a response, or undefined. */
export function refreshCookie (res: LightMyRequestResponse, name = 'refresh_token'): string | undefined {
  const cookie = res.cookies.find(c => c.name === name)
  return cookie?.value
}

export function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

/**
 * A fast-jwt signer for forging test tokens. fast-jwt supports the `typ` option but
 * its types omit it, hence the loose options type.
 */
export function testSigner (options: Record<string, unknown>): (payload: Record<string, unknown>) => string {
  return createSigner(options as Parameters<typeof createSigner>[0]) as unknown as (payload: Record<string, unknown>) => string
}
