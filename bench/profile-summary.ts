// Top functions of a V8 .cpuprofile (from `npm run bench -- --profile`), by self time
// and by total (inclusive) time:
//   npx tsx bench/profile-summary.ts bench/results/profiles/memory-1/<file>.cpuprofile [top]
import { readFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const [file, topArg] = process.argv.slice(2)
if (file === undefined) throw new TypeError('usage: profile-summary.ts <file.cpuprofile> [top]')
const top = Number(topArg ?? 30)
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map(node => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

function key (node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame
  const where = url === '' ? '' : ` ${url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*?\/main\//, '')}:${lineNumber + 1}`
  return `${functionName === '' ? '(anonymous)' : functionName}${where}`
}

const self = new Map<string, number>()
const total = new Map<string, number>()
let all = 0
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0
  all += dt
  let id: number | undefined = profile.samples[i]
  const leaf = byId.get(id) as ProfileNode
  self.set(key(leaf), (self.get(key(leaf)) ?? 0) + dt)
  // Each function counted once per sample, however deep it recurses.
  const seen = new Set<string>()
  while (id !== undefined) {
    const k = key(byId.get(id) as ProfileNode)
    if (!seen.has(k)) {
      seen.add(k)
      total.set(k, (total.get(k) ?? 0) + dt)
    }
    id = parent.get(id)
  }
}
const print = (title: string, map: Map<string, number>): void => {
  process.stdout.write(`-- ${title}\n`)
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(100 * us / all).toFixed(1).padStart(5)}%  ${k}\n`)
  }
}
print('self', self)
print('total', total)
