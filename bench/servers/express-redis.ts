// Server 5, the tutorial stack: express, jsonwebtoken and one Redis GET of a
// denylist key per request.
import { createServer } from 'node:http'
import express from 'express'
import jwt from 'jsonwebtoken'
import { Redis } from 'ioredis'
import { BENCH_SECRET, redisUrl, serveHttp } from '../common.js'

// Same client settings as every other server of the bench, auto-pipelining included.
const redis = new Redis(redisUrl(), { enableAutoPipelining: true })
const app = express()
app.get('/me', async function me (req, res) {
  const header = req.headers.authorization
  if (header === undefined || !header.startsWith('Bearer ')) {
    res.status(401).json({ error: 'missing token' })
    return
  }
  let payload: jwt.JwtPayload
  try {
    payload = jwt.verify(header.slice(7), BENCH_SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload
  } catch {
    res.status(401).json({ error: 'invalid token' })
    return
  }
  if (await redis.get(`denylist:${String(payload.jti)}`) !== null) {
    res.status(401).json({ error: 'revoked token' })
    return
  }
  res.json({ id: payload.sub })
})
const server = createServer(app)
await serveHttp(server, async () => {
  server.close()
  redis.disconnect()
})
