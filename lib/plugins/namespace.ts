import type { FastifyInstance } from 'fastify'
import { AuthEvents } from '../domain/events.js'
import type { RevocableJwtNamespace } from '../types.js'

/** Which plugin provides each member of the namespace: a member used without its plugin says which to register. */
const PROVIDERS: Record<string, string> = {
  revocation: 'revocableJwtRevocation or revocableJwtTokenVersions',
  revocationStore: 'revocableJwtRevocation or revocableJwtTokenVersions',
  checkRevocation: 'revocableJwtRevocation or revocableJwtTokenVersions',
  revokeAccessToken: 'revocableJwtRevocation',
  getTokenVersion: 'revocableJwtTokenVersions',
  bumpTokenVersion: 'revocableJwtTokenVersions',
  accessTokens: 'revocableJwtAuthenticate',
  authenticate: 'revocableJwtAuthenticate',
  verifyAccessToken: 'revocableJwtAuthenticate',
  jwks: 'revocableJwtAuthenticate',
  sessions: 'revocableJwtIssuance',
  refreshTokenStore: 'revocableJwtIssuance',
  tokenIssuer: 'revocableJwtIssuance',
  refreshCookie: 'revocableJwtIssuance',
  issueTokens: 'revocableJwtIssuance',
  startSession: 'revocableJwtIssuance',
  revokeSession: 'revocableJwtIssuance',
  logoutAll: 'revocableJwtIssuance',
  listSessions: 'revocableJwtIssuance',
  changeCredentials: 'revocableJwtIssuance',
  cookieSession: 'revocableJwtCookieSession',
  refuseCrossSite: 'revocableJwtCookieSession',
  startCookieSession: 'revocableJwtCookieSession',
  endCookieSession: 'revocableJwtCookieSession'
}

/**
 * `fastify.revocableJwt`, created by the first plugin of the package registered, with
 * the events; every other member throws until its plugin provides it.
 */
export function useNamespace (fastify: FastifyInstance): RevocableJwtNamespace {
  if (fastify.hasDecorator('revocableJwt')) return fastify.revocableJwt
  const namespace = {
    events: new AuthEvents((err, event) => {
      // A failing listener must not turn a completed revocation into an error.
      fastify.log.error({ err, event }, 'fastify-revocable-jwt: event listener threw')
    })
  }
  for (const [name, plugin] of Object.entries(PROVIDERS)) {
    Object.defineProperty(namespace, name, {
      configurable: true,
      enumerable: false,
      get () {
        throw new Error(`fastify.revocableJwt.${name} needs the ${plugin} plugin: register it (the default export registers them all)`)
      }
    })
  }
  fastify.decorate('revocableJwt', namespace as RevocableJwtNamespace)
  return namespace as RevocableJwtNamespace
}

/** Provide members of the namespace (each once: a second provider is a wiring mistake). */
export function provide (namespace: RevocableJwtNamespace, members: Partial<Record<keyof RevocableJwtNamespace, unknown>>): void {
  for (const [name, value] of Object.entries(members)) {
    if (Object.getOwnPropertyDescriptor(namespace, name)?.get === undefined) {
      throw new Error(`fastify.revocableJwt.${name} is already provided: is a plugin of fastify-revocable-jwt registered twice?`)
    }
    Object.defineProperty(namespace, name, { value, enumerable: true, configurable: false, writable: false })
  }
}

/** Whether a member has been provided. */
export function isProvided (namespace: RevocableJwtNamespace, name: keyof RevocableJwtNamespace): boolean {
  return Object.getOwnPropertyDescriptor(namespace, name)?.get === undefined
}
