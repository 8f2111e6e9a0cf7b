import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'
import { transform } from 'esbuild'

const PUBLIC = new URL('./public/', import.meta.url)
const CLIENT_SOURCE = new URL('../lib/client/index.ts', import.meta.url)

/** Everything the page needs comes from this origin; nothing inline, nothing else. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

type Asset = [url: string, body: string, contentType: string]
let loading: Promise<Asset[]> | undefined

async function loadAssets (): Promise<Asset[]> {
  const [html, script, css, clientSource] = await Promise.all([
    readFile(new URL('index.html', PUBLIC), 'utf8'),
    readFile(new URL('demo.js', PUBLIC), 'utf8'),
    readFile(new URL('demo.css', PUBLIC), 'utf8'),
    readFile(CLIENT_SOURCE, 'utf8')
  ])
  // `npm run example` runs from source with no build step: strip the client's types once, at boot.
  const client = await transform(clientSource, { loader: 'ts', format: 'esm', target: 'es2022', sourcefile: 'client.ts' })
  return [
    ['/', html, 'text/html; charset=utf-8'],
    ['/demo.js', script, 'text/javascript; charset=utf-8'],
    ['/demo.css', css, 'text/css; charset=utf-8'],
    ['/client.js', client.code, 'text/javascript; charset=utf-8']
  ]
}

/**
 * The silent-refresh demo: `/` is a page that logs in, calls `/me`, lists and revokes
 * sessions through `fastify-revocable-jwt/client`, served as `/client.js`.
 */
export const demo: FastifyPluginAsync = async function demo (app) {
  // Read and transformed once per process: the tests build many apps.
  loading ??= loadAssets()
  for (const [url, body, contentType] of await loading) {
    app.get(url, async function serveDemoAsset (_request, reply) {
      reply
        .header('content-type', contentType)
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
      return body
    })
  }
}

export default demo
