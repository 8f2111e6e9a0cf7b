import { build, type ApiEnv } from './app.js'

const env = process.env as ApiEnv
const port = Number(env.PORT ?? 3002)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${JSON.stringify(env.PORT)}`)
  process.exit(1)
}
let app
try {
  app = await build({ env, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
} catch (err) {
  console.error((err as Error).message)
  process.exit(1)
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
try {
  await app.listen({ port, host: env.HOST ?? '127.0.0.1' })
} catch (err) {
  app.log.error(err)
  process.exit(1)
}
