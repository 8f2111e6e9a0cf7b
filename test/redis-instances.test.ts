// Two example server processes against one private Redis (the cases: instances.ts).
import t from 'tap'
import { RedisServer } from './redis-server.js'
import { instancesContract } from './instances.js'

const server = await RedisServer.start()
t.teardown(() => server.close())
await instancesContract({ REDIS_URL: server.url })
