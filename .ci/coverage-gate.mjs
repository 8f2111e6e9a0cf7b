// The coverage gate: fails when line or branch coverage of lib/ falls below the
// thresholds. Reads the json-summary report that `tap report json-summary` writes.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

const THRESHOLDS = { lines: Number(process.env.COVERAGE_LINES ?? 90), branches: Number(process.env.COVERAGE_BRANCHES ?? 85) }
const summary = JSON.parse(readFileSync(process.argv[2] ?? '.tap/report/coverage-summary.json', 'utf8'))

const totals = { lines: { covered: 0, total: 0 }, branches: { covered: 0, total: 0 } }
for (const [file, data] of Object.entries(summary)) {
  if (file === 'total') continue
  const path = relative(process.cwd(), file)
  if (!path.startsWith('lib/')) continue
  for (const kind of ['lines', 'branches']) {
    totals[kind].covered += data[kind].covered
    totals[kind].total += data[kind].total
  }
}
let ok = true
for (const kind of ['lines', 'branches']) {
  const pct = totals[kind].total === 0 ? 0 : (100 * totals[kind].covered) / totals[kind].total
  const pass = pct >= THRESHOLDS[kind]
  ok &&= pass
  console.log(`coverage of lib/ ${kind}: ${pct.toFixed(2)}% (gate ${THRESHOLDS[kind]}%) ${pass ? 'ok' : 'FAILED'}`)
}
process.exitCode = ok ? 0 : 1
