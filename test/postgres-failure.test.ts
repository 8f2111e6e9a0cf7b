// PostgreSQL goes away in the middle of traffic and comes back (the case:
// store-outage.ts), with every store of the example in it (DATABASE_URL). No time
// bound is asserted: a refused connection fails at once and the store timeout caps
// the rest; how fast is the bench's question, not a test's.
import t from 'tap'
import { PostgresServer } from './postgres-server.js'
import { storeOutageContract } from './store-outage.js'

const server = await PostgresServer.start()
t.teardown(() => server.close())
storeOutageContract('a PostgreSQL', { env: { DATABASE_URL: await server.createDatabase('outage') }, server })
