// Two example server processes with DATABASE_URL on one private PostgreSQL: every
// store of both in one database, and no Redis (the cases: instances.ts).
import t from 'tap'
import { PostgresServer } from './postgres-server.js'
import { instancesContract } from './instances.js'

const server = await PostgresServer.start()
t.teardown(() => server.close())
await instancesContract({ DATABASE_URL: await server.createDatabase('instances') })
