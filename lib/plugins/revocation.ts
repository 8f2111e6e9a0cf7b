import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Revocation, type TokenVersionSource } from '../domain/revocation.js'
import { checkUserId, isUserId } from '../domain/refresh-tokens.js'
import { TokenInvalidError, TokenMissingError, TokenRevokedError } from '../errors.js'
import { DEFAULT_STORE_TIMEOUT, checkOptionNames, checkStore, durationOption, optionalFunction, type Duration } from '../options.js'
import type { RevocationStore } from '../stores/types.js'
import type { ForeignTokenClaims } from '../types.js'
import { isProvided, provide, useNamespace } from './namespace.js'
import { resolveRedisOptions } from './redis-client.js'
import type { RevocableJwtRedisOptions } from './redis-options.js'
import { resolvePostgresOptions, type RevocableJwtPostgresOptions } from './postgres-option.js'
import { defaultStore, manageStore } from './stores.js'

export const REVOCATION_PLUGIN_NAME = 'fastify-revocable-jwt-revocation'
export const TOKEN_VERSIONS_PLUGIN_NAME = 'fastify-revocable-jwt-token-versions'

/** Where the revocation store comes from; given to whichever check plugin is registered first. */
export interface RevocationStoreOptions {
  /**
   * Where revoked token ids, revoked sessions and token versions live.
   * @default a Redis store when `redis` is set, a PostgreSQL one when `postgres` is, else a new memory store (single process only)
   */
  revocationStore?: RevocationStore
  /**
   * Keep revocation in Redis, shared by every instance: a Redis URL, or
   * `{ namespace, url, clientOptions, keyPrefix }` (needs `ioredis` and `@fastify/redis`).
   * @default undefined (memory)
   */
  redis?: string | RevocableJwtRedisOptions | undefined
  /**
   * Keep revocation in PostgreSQL, shared by every instance: `{ pool, tablePrefix,
   * createTables, sweepInterval }` with the app's `pg` Pool.
   * @default undefined (memory)
   */
  postgres?: RevocableJwtPostgresOptions
  /**
   * Give up on a store call after this long and answer `503 AUTH_STORE_UNAVAILABLE`.
   * @default '2s'
   */
  storeTimeout?: Duration
  /**
   * Where `checkRevocation` finds the claims of a token the app verified itself.
   * @default (request) => request.user (where @fastify/jwt puts them)
   */
  tokenClaims?: (request: FastifyRequest) => ForeignTokenClaims | undefined | null
  /**
   * The clock, in ms since the epoch. Tests inject one.
   * @default Date.now
   */
  now?: () => number
}

/** Options of the revocation (denylist) check. */
export type RevocationOptions = RevocationStoreOptions

/** Options of the token-version check. */
export interface TokenVersionsOptions extends RevocationStoreOptions {
  /**
   * Read the user's token version from the app's own user record instead of the
   * revocation store. Called on every checked request, login and refresh. Give
   * `bumpTokenVersion` with it.
   * @default undefined
   */
  getTokenVersion?: (userId: string) => number | Promise<number>
  /**
   * Increment the token version on the app's own user record and return the new one.
   * Goes with `getTokenVersion`.
   * @default undefined
   */
  bumpTokenVersion?: (userId: string) => number | Promise<number>
}

export const REVOCATION_STORE_OPTION_NAMES = ['revocationStore', 'redis', 'postgres', 'storeTimeout', 'tokenClaims', 'now'] as const
export const TOKEN_VERSIONS_OPTION_NAMES = [...REVOCATION_STORE_OPTION_NAMES, 'getTokenVersion', 'bumpTokenVersion'] as const

const MAX_FOREIGN_ID_LENGTH = 256

function defaultTokenClaims (request: FastifyRequest): ForeignTokenClaims | undefined {
  return (request as unknown as { user?: ForeignTokenClaims }).user
}

function optionalId (value: unknown): value is string | undefined {
  return value === undefined || (typeof value === 'string' && value.length > 0 && value.length <= MAX_FOREIGN_ID_LENGTH)
}

/**
 * The shared revocation domain object, made by the first check plugin registered.
 * Both checks read one store, so that one request costs one round trip.
 */
async function useRevocation (fastify: FastifyInstance, opts: RevocationStoreOptions, where: string): Promise<Revocation> {
  const namespace = useNamespace(fastify)
  const storeOptions = REVOCATION_STORE_OPTION_NAMES.filter(name => opts[name] !== undefined)
  if (isProvided(namespace, 'revocation')) {
    if (storeOptions.length > 0) {
      throw new TypeError(`${where}: ${storeOptions.join(', ')} configure the revocation store, which the plugin registered before already set up: give them to that one only`)
    }
    return namespace.revocation
  }
  checkStore(opts.revocationStore, 'revocationStore', ['check', 'revokeToken', 'revokeSession', 'getTokenVersion', 'bumpTokenVersion'])
  optionalFunction(opts.tokenClaims, 'tokenClaims')
  optionalFunction(opts.now, 'now')
  const storeTimeoutMs = durationOption(opts.storeTimeout, DEFAULT_STORE_TIMEOUT, 'storeTimeout', 1, 60_000)
  const now = opts.now ?? Date.now
  const { store, owned } = await defaultStore<RevocationStore>(fastify, opts.revocationStore, {
    redis: resolveRedisOptions(opts.redis),
    postgres: resolvePostgresOptions(opts.postgres, opts.redis),
    storeTimeoutMs,
    now
  }, 'revocation')
  manageStore(fastify, store, owned)
  const revocation = new Revocation({ store, storeTimeoutMs, events: namespace.events })
  const tokenClaims = opts.tokenClaims ?? defaultTokenClaims

  /** `onRequest` hook after the app's own verification: its token must not be revoked. */
  async function checkRevocation (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const claims = tokenClaims(request)
    if (claims === undefined || claims === null) {
      // Placed before the app's own verification, or that verification let it through.
      reply.header('www-authenticate', 'Bearer')
      throw new TokenMissingError()
    }
    const { sub, jti, sid, ver } = claims
    if (!isUserId(sub) || !optionalId(jti) || !optionalId(sid) || (ver !== undefined && (!Number.isSafeInteger(ver) || ver < 0))) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw new TokenInvalidError()
    }
    // A token without `ver` predates the version check: it counts as version 0.
    if (!await revocation.isCurrentToken(sub, jti ?? null, sid ?? null, ver ?? 0)) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw new TokenRevokedError()
    }
  }

  provide(namespace, { revocation, revocationStore: store, checkRevocation })
  return revocation
}

const fastifyRevocableJwtRevocation: FastifyPluginAsync<RevocationOptions> = async function fastifyRevocableJwtRevocation (fastify, opts) {
  checkOptionNames(opts, REVOCATION_STORE_OPTION_NAMES, 'revocableJwtRevocation')
  const revocation = await useRevocation(fastify, opts, 'revocableJwtRevocation')
  revocation.checkDenylist()
  provide(fastify.revocableJwt, {
    async revokeAccessToken (claims: { sub: string, jti: string, exp: number }): Promise<void> {
      checkUserId(claims?.sub, 'claims.sub')
      if (typeof claims.jti !== 'string' || claims.jti.length === 0) throw new TypeError('claims.jti must be a non-empty string')
      if (!Number.isFinite(claims.exp)) throw new TypeError('claims.exp must be a number of seconds since the epoch')
      // Kept exactly as long as the token could still be accepted.
      await revocation.revokeToken(claims.sub, claims.jti, claims.exp * 1000)
    }
  })
}

/**
 * The revocation (denylist) check: revoked access-token ids and revoked sessions,
 * enforced by `fastify.revocableJwt.authenticate` and, for tokens the app verifies
 * itself, by the `fastify.revocableJwt.checkRevocation` hook. Adds
 * `fastify.revocableJwt.revokeAccessToken(claims)`.
 *
 * @example
 * await app.register(fastifyJwt, { secret })            // the app's own tokens
 * await app.register(revocableJwtRevocation, { redis: process.env.REDIS_URL })
 * app.get('/profile', { onRequest: [app.authenticate, app.revocableJwt.checkRevocation] }, handler)
 */
export const revocableJwtRevocation = fp(fastifyRevocableJwtRevocation, {
  fastify: '5.x',
  name: REVOCATION_PLUGIN_NAME
})

const fastifyRevocableJwtTokenVersions: FastifyPluginAsync<TokenVersionsOptions> = async function fastifyRevocableJwtTokenVersions (fastify, opts) {
  checkOptionNames(opts, TOKEN_VERSIONS_OPTION_NAMES, 'revocableJwtTokenVersions')
  const { getTokenVersion, bumpTokenVersion, ...storeOptions } = opts
  optionalFunction(getTokenVersion, 'getTokenVersion')
  optionalFunction(bumpTokenVersion, 'bumpTokenVersion')
  if ((getTokenVersion === undefined) !== (bumpTokenVersion === undefined)) {
    // Reading versions from one place and bumping them in another would make logout-all a no-op.
    throw new TypeError('getTokenVersion and bumpTokenVersion go together: give both or neither')
  }
  const revocation = await useRevocation(fastify, storeOptions, 'revocableJwtTokenVersions')
  const source: TokenVersionSource | undefined = getTokenVersion === undefined ? undefined : { get: getTokenVersion, bump: bumpTokenVersion as TokenVersionSource['bump'] }
  revocation.checkVersions(source)
  provide(fastify.revocableJwt, {
    async getTokenVersion (userId: string): Promise<number> {
      checkUserId(userId)
      return await revocation.getVersion(userId)
    },
    async bumpTokenVersion (userId: string): Promise<number> {
      checkUserId(userId)
      return await revocation.bumpVersion(userId)
    }
  })
}

/**
 * The token-version check: a per-user counter carried in every access token (`ver`);
 * `fastify.revocableJwt.bumpTokenVersion(userId)` stops every token of the user issued
 * before. Tokens the app signs itself carry `ver` from `getTokenVersion(userId)`; a
 * token without one counts as version 0, so one bump also ends tokens issued before
 * the app adopted the check.
 */
export const revocableJwtTokenVersions = fp(fastifyRevocableJwtTokenVersions, {
  fastify: '5.x',
  name: TOKEN_VERSIONS_PLUGIN_NAME
})
