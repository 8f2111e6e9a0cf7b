// What the bench orchestrator and its server processes share: the key, the token
// shape and the small IPC protocol between them.
import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { createSigner } from 'fast-jwt'

/** The HMAC key every server verifies with (HS256, 32+ bytes). Bench only. */
export const BENCH_SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
/** The `typ` header this package requires on access tokens. */
export const TOKEN_TYPE = 'at+jwt'
/** Tokens outlive any bench run, so none expires during one. */
const TOKEN_LIFETIME_MS = 2 * 3_600_000

export interface BenchToken {
  userId: string
  token: string
}

/** An Ed25519 key for the rows that verify with public keys, and its `kid`. */
export interface BenchKeyPair {
  privateKey: string
  publicKey: string
  kid: string
}

/**
 * `count` access tokens, one per user, shaped exactly like those the package issues
 * (`sub`, `sid`, `jti`, `ver` 0, `typ: at+jwt`), so that every server accepts the same
 * ones: HS256 with the bench secret, or EdDSA with `key`.
 */
export function makeTokens (count: number, key?: BenchKeyPair): BenchToken[] {
  const sign = key === undefined
    ? createSigner({ key: BENCH_SECRET, algorithm: 'HS256', header: { alg: 'HS256', typ: TOKEN_TYPE }, expiresIn: TOKEN_LIFETIME_MS })
    : createSigner({ key: key.privateKey, algorithm: 'EdDSA', kid: key.kid, header: { alg: 'EdDSA', typ: TOKEN_TYPE }, expiresIn: TOKEN_LIFETIME_MS })
  const tokens: BenchToken[] = []
  for (let i = 0; i < count; i++) {
    const userId = `user-${i}`
    tokens.push({
      userId,
      token: sign({ sub: userId, sid: randomBytes(16).toString('base64url'), jti: randomBytes(16).toString('base64url'), ver: 0 })
    })
  }
  return tokens
}

/** Messages from the orchestrator to a server process. */
export type ToServer = { type: 'rss' } | { type: 'stop' }
/** Messages from a server process to the orchestrator. */
export type FromServer = { type: 'listening', port: number } | { type: 'rss', rss: number }

/** Environment the orchestrator passes to a server process. */
export interface ServerEnv {
  /** `memory`, `redis` or `postgres` for the servers that can use them. */
  BENCH_STORE?: string
  /** URL of the bench's private redis-server. */
  BENCH_REDIS_URL?: string
  /** URL of a fresh database on the bench's private PostgreSQL (rows with `BENCH_STORE=postgres`). */
  BENCH_DATABASE_URL?: string
}

/** The bench's private Redis URL, or an error naming what is missing. */
export function redisUrl (): string {
  const url = process.env.BENCH_REDIS_URL
  if (url === undefined || url === '') throw new Error('BENCH_REDIS_URL is not set: start servers through bench/run.ts')
  return url
}

function send (message: FromServer): void {
  process.send?.(message)
}

/**
 * Tell the orchestrator which port `listen` got, answer its RSS question and stop
 * (gracefully, so that `--cpu-prof` writes its profile) when asked.
 */
export async function serve (listen: () => Promise<number>, close: () => Promise<void>): Promise<void> {
  process.on('message', (message: ToServer) => {
    if (message.type === 'rss') {
      send({ type: 'rss', rss: process.memoryUsage.rss() })
    } else if (message.type === 'stop') {
      close().finally(() => process.exit(0))
    }
  })
  // The orchestrator's death must not leave a server behind.
  process.on('disconnect', () => process.exit(0))
  send({ type: 'listening', port: await listen() })
}

/** Serve a Fastify app on a free loopback port. */
export function serveFastify (app: FastifyInstance, close: () => Promise<void> = () => app.close()): Promise<void> {
  return serve(async () => {
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as AddressInfo).port
  }, close)
}

/** Serve a plain `node:http` server (express) on a free loopback port. */
export function serveHttp (server: Server, close: () => Promise<void>): Promise<void> {
  return serve(() => new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  }), close)
}

/** Body of the login routes (the bench logs in by user id: no password hashing to measure). */
export const loginSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } }
} as const
