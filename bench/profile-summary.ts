// Top self-time functions of a V8 .cpuprofile (from `npm run bench -- --profile`):
//   npx tsx bench/profile-summary.ts bench/results/profiles/memory-1.cpuprofile [top]
import { readFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
}
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const [file, topArg] = process.argv.slice(2)
if (file === undefined) throw new TypeError('usage: profile-summary.ts <file.cpuprofile> [top]')
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map(node => [node.id, node]))
const self = new Map<string, number>()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]) as ProfileNode
  const { functionName, url, lineNumber } = node.callFrame
  const where = url === '' ? '' : ` ${url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*\/main\//, '')}:${lineNumber + 1}`
  const key = `${functionName === '' ? '(anonymous)' : functionName}${where}`
  const dt = profile.timeDeltas[i] ?? 0
  self.set(key, (self.get(key) ?? 0) + dt)
  total += dt
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))
for (const [key, us] of top) process.stdout.write(`${(100 * us / total).toFixed(1).padStart(5)}%  ${key}\n`)
