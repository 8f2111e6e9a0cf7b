// Count the test results that tap saved under .tap/test-results (one TAP file per
// test file) and print the closing line CI reads: "N passed, N failed".
// A test point counts once: subtests count their own points, not their summary line.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Parser } from 'tap-parser'

function files (dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.tap') ? [path] : []
  })
}

let passed = 0
let failed = 0
let skipped = 0
const failures = []

function attach (parser) {
  const children = new Set()
  parser.on('child', (child) => {
    attach(child)
    child.on('complete', () => children.add(child.name))
  })
  parser.on('assert', (point) => {
    // A subtest's own summary line carries the subtest's name; its points were counted already.
    if (children.has(point.name)) {
      if (!point.ok) failures.push(point.fullname)
      return
    }
    if (point.skip || point.todo) skipped++
    else if (point.ok) passed++
    else { failed++; failures.push(point.fullname) }
  })
}

const dir = process.argv[2] ?? '.tap/test-results'
const extra = process.argv.slice(3).map(Number)
for (const file of files(dir)) {
  const parser = new Parser()
  attach(parser)
  parser.on('complete', (results) => {
    // A file that crashed or bailed out is a failure even if no point failed.
    if (!results.ok && results.fail === 0) { failed++; failures.push(`${file}: did not complete`) }
  })
  parser.end(readFileSync(file, 'utf8'))
}
// Extra counts (passed, failed) from other runners, e.g. the type tests.
if (extra.length === 2 && extra.every(Number.isFinite)) { passed += extra[0]; failed += extra[1] }
for (const name of failures) console.log(`failed: ${name}`)
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
process.exitCode = failed > 0 ? 1 : 0
