// Redis goes away in the middle of traffic and comes back (the case: store-outage.ts).
import t from 'tap'
import { RedisServer } from './redis-server.js'
import { storeOutageContract } from './store-outage.js'

/** The store timeout is 2 s; the client fails fast, so 503s should come much sooner. */
const BOUND_MS = 2500

const server = await RedisServer.start({ persistent: true })
t.teardown(() => server.close())
storeOutageContract('a Redis', { env: { REDIS_URL: server.url }, server, boundMs: BOUND_MS })
