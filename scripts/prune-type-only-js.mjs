// After tsc: delete the JavaScript emitted for modules that hold only types (their .js
// is an empty `export {};`). Nothing imports them at run time; their .d.ts stay.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Only comments and `export {};` left once the types are erased. */
function isEmptyModule (source) {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '').trim() === 'export {};'
}

function prune (dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) prune(path)
    else if (name.endsWith('.js') && isEmptyModule(readFileSync(path, 'utf8'))) {
      rmSync(path)
      rmSync(`${path}.map`, { force: true })
    }
  }
}

prune(process.argv[2] ?? 'dist/lib')
