// Server 1, the ceiling: Fastify with no authentication at all.
import Fastify from 'fastify'
import { serveFastify } from '../common.js'

const app = Fastify({ logger: false })
app.get('/me', async function me () {
  return { id: 'anonymous' }
})
await serveFastify(app)
