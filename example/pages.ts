import { hkdfSync } from 'node:crypto'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify'
import formbody from '@fastify/formbody'
import csrfProtection from '@fastify/csrf-protection'
import { revocableJwtCookieSession } from '../lib/index.js'
import type { User, UserRegistry } from './users.js'

export interface PagesOptions {
  users: UserRegistry
  /**
   * Check an email and password within the request and login limits, as
   * `POST /auth/login` does: the user and the token version read before the password;
   * throws 401 or 429.
   */
  login: (reply: FastifyReply, email: string, password: string) => Promise<{ user: User, tokenVersion: number }>
  /** Origins besides the service's own that may post the forms. */
  allowedOrigins: string[]
  /** Require a double-submit CSRF token (bound to the session) on every form post. */
  csrfTokens: boolean
  /** The service's secret: the CSRF tokens' HMAC key is derived from it. */
  secret: string
}

const AREA = '/app'
const LOGIN = `${AREA}/login`
const ACCOUNT = `${AREA}/account`
const LOGOUT = `${AREA}/logout`

/** No script, no style from anywhere, forms only to this origin, never framed. */
const CONTENT_SECURITY_POLICY = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const loginSchema = {
  type: 'object',
  required: ['email', 'password'],
  properties: {
    email: { type: 'string', minLength: 3, maxLength: 254 },
    password: { type: 'string', minLength: 1, maxLength: 256 },
    _csrf: { type: 'string', maxLength: 512 }
  }
} as const

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text for HTML content and quoted attribute values. */
export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, c => HTML_ESCAPES[c])
}

function page (title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
${body}
</body>
</html>
`
}

function csrfField (token: string | null): string {
  return token === null ? '' : `<input type="hidden" name="_csrf" value="${escapeHtml(token)}">`
}

function loginPage (csrf: string | null, error: string | null, email = ''): string {
  return page('Sign in', `<h1>Sign in</h1>
${error === null ? '' : `<p id="error" role="alert">${escapeHtml(error)}</p>`}
<form method="post" action="${LOGIN}">
${csrfField(csrf)}
<label>Email <input type="email" name="email" id="email" value="${escapeHtml(email)}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" id="password" autocomplete="current-password" required></label>
<button type="submit" id="sign-in">Sign in</button>
</form>`)
}

function accountPage (email: string, csrf: string | null): string {
  return page('Your account', `<h1>Your account</h1>
<p id="who">Signed in as <strong id="email">${escapeHtml(email)}</strong></p>
<form method="post" action="${LOGOUT}">
${csrfField(csrf)}
<button type="submit" id="sign-out">Sign out</button>
</form>`)
}

function sendHtml (reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    // Personal pages: never stored by a shared or a browser cache.
    .header('cache-control', 'no-store')
    .send(html)
}

/** What a CSRF token is bound to: the session, or for the login form a fixed value no session id can take. */
function csrfUserInfo (request: FastifyRequest): string {
  return request.auth?.sessionId ?? 'no session'
}

function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

/**
 * The server-rendered area (DESIGN.md, "Server-rendered pages"): a login form, an
 * account page and logout, authenticated by the package's cookie transport, with no
 * JavaScript at all. Register it after the package.
 */
export const pages: FastifyPluginAsync<PagesOptions> = async function pages (app, opts) {
  const { users } = opts
  await app.register(revocableJwtCookieSession, { path: AREA, loginPath: LOGIN, allowedOrigins: opts.allowedOrigins })
  // HTML forms post application/x-www-form-urlencoded; only this area parses it.
  await app.register(formbody, { bodyLimit: 4096 })
  const { cookieSession, refuseCrossSite, startCookieSession, endCookieSession, refreshCookie } = app.revocableJwt

  // Double-submit tokens: the secret in a cookie of the area, each token bound to the
  // session id with an HMAC key of the server's, so that a cookie planted by a sibling
  // subdomain cannot be paired with a token the attacker made.
  await app.register(csrfProtection, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: 'page_csrf',
    cookieOpts: { path: AREA, sameSite: 'lax', httpOnly: true, secure: refreshCookie.settings.secure },
    getUserInfo: csrfUserInfo,
    csrfOpts: { hmacKey: Buffer.from(hkdfSync('sha256', opts.secret, 'fastify-revocable-jwt-example', 'csrf-token', 32)) }
  })
  const csrfToken = (request: FastifyRequest, reply: FastifyReply): string | null =>
    opts.csrfTokens ? reply.generateCsrf({ userInfo: csrfUserInfo(request) }) : null
  const checkCsrfToken: preHandlerHookHandler[] = opts.csrfTokens ? [app.csrfProtection] : []

  app.get(LOGIN, async function showLogin (request, reply) {
    return sendHtml(reply, 200, loginPage(csrfToken(request, reply), null))
  })

  app.post<{ Body: { email: string, password: string } }>(LOGIN, {
    onRequest: refuseCrossSite,
    preHandler: checkCsrfToken,
    schema: { body: loginSchema },
    attachValidation: true
  }, async function submitLogin (request, reply) {
    if (request.validationError !== undefined) {
      return sendHtml(reply, 400, loginPage(csrfToken(request, reply), 'Enter your email and password.'))
    }
    const email = normaliseEmail(request.body.email)
    // The same check, limits and order as POST /auth/login (app.ts): failures through
    // either form count together, and the version is read before the password hash.
    let verified: { user: User, tokenVersion: number }
    try {
      verified = await opts.login(reply, email, request.body.password)
    } catch (err) {
      const { statusCode, code } = err as { statusCode?: number, code?: string }
      if (statusCode === 429) {
        const message = code === 'TOO_MANY_REQUESTS' ? 'Too many sign-in requests; try again later.' : 'Too many failed sign-ins; try again later.'
        return sendHtml(reply, 429, loginPage(csrfToken(request, reply), message, email))
      }
      if (statusCode === 401) return sendHtml(reply, 401, loginPage(csrfToken(request, reply), 'Invalid email or password.', email))
      throw err
    }
    const { user, tokenVersion } = verified
    await startCookieSession(reply, { id: user.id, tokenVersion })
    return reply.redirect(ACCOUNT, 303)
  })

  app.get(ACCOUNT, {
    onRequest: cookieSession({ onMissing: 'redirect' })
  }, async function showAccount (request, reply) {
    const auth = request.auth as NonNullable<typeof request.auth>
    const user = await users.findById(auth.userId)
    if (user === null) {
      await endCookieSession(request, reply)
      return reply.redirect(LOGIN, 303)
    }
    return sendHtml(reply, 200, accountPage(user.email, csrfToken(request, reply)))
  })

  app.post(LOGOUT, {
    // Logging out always ends at the login page with both cookies cleared, signed in or not.
    onRequest: cookieSession({ onMissing: 'continue' }),
    preHandler: checkCsrfToken
  }, async function logout (request, reply) {
    await endCookieSession(request, reply)
    return reply.redirect(LOGIN, 303)
  })
}

export default pages
