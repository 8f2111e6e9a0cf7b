// The docs checked against themselves and the code, in `npm test` after the build:
//
// - every in-page link `[…](#anchor)` of README.md and docs/*.md names a heading of its
//   page (GitHub's anchor rules), every relative link names a file that exists (and a
//   heading of it when it has an `#anchor`);
// - every option of the package's public option types (the exported `…Options` types
//   of each entry point, read from the built declarations) is a row of an option table
//   (a table whose first column is "option"): `name` or `parent.name`.
//
// Prints one line per problem and exits 1 when there is any.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('..', import.meta.url))
const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter(name => name.endsWith('.md')).map(name => `docs/${name}`)]
const problems = []

/** The page without its fenced code blocks (a `#` there is a comment, a `](` is code). */
function prose (markdown) {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '')
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors (markdown) {
  const seen = new Map()
  const result = new Set()
  for (const [, text] of prose(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const plain = text.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '')
    const base = plain.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-')
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    result.add(count === 0 ? base : `${base}-${count}`)
  }
  return result
}

const anchorsOf = new Map()
function pageAnchors (path) {
  if (!anchorsOf.has(path)) anchorsOf.set(path, anchors(readFileSync(join(root, path), 'utf8')))
  return anchorsOf.get(path)
}

for (const page of pages) {
  const text = prose(readFileSync(join(root, page), 'utf8')).replace(/`[^`\n]*`/g, match => match.includes('](') ? '' : match)
  for (const [, target] of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // http:, https:, mailto:
    const [file, anchor] = target.split('#')
    const path = file === '' ? page : relative(root, join(root, dirname(page), decodeURIComponent(file)))
    if (file !== '' && !existsSync(join(root, path))) {
      problems.push(`${page}: the link (${target}) names ${path}, which does not exist`)
      continue
    }
    if (anchor !== undefined && path.endsWith('.md') && !pageAnchors(path).has(decodeURIComponent(anchor))) {
      problems.push(`${page}: the link (${target}) names no heading of ${path}`)
    }
  }
}

// Option names documented: in a table whose header starts with "option", each row's
// first cell (`name`, `parent.name`: both count) and the names of an object it spells
// out in any cell (`{ url?, keyPrefix? }`); and a table of one option's values, whose
// header starts with that option (`onMissing`).
const documented = new Set()
const addNames = code => { for (const name of code.match(/[A-Za-z_$][\w$]*/g) ?? []) documented.add(name) }
for (const page of pages) {
  const lines = readFileSync(join(root, page), 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const header = /^\|\s*(option|`[A-Za-z_$][\w$.]*`)\s*\|/i.exec(lines[i])
    if (header === null) continue
    if (header[1].startsWith('`')) {
      addNames(header[1])
      continue
    }
    for (let j = i + 2; j < lines.length && lines[j].startsWith('|'); j++) {
      const [, first, ...rest] = lines[j].split(/(?<!\\)\|/)
      for (const [, code] of first.matchAll(/`([^`]+)`/g)) addNames(code)
      for (const [, names] of rest.join('|').matchAll(/`\{([^`}]+)\}`/g)) addNames(names)
    }
  }
}

// The public option types: every exported type named …Options of each entry point in "exports".
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const entries = Object.values(pkg.exports).map(target => target.types).filter(Boolean).map(path => join(root, path))
for (const entry of entries) {
  if (!existsSync(entry)) problems.push(`${relative(root, entry)} does not exist: run npm run build first`)
}
if (problems.length === 0) {
  const program = ts.createProgram(entries, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, skipLibCheck: true, noEmit: true })
  const checker = program.getTypeChecker()
  const reported = new Set()
  for (const entry of entries) {
    const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry))
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      if (!exported.name.endsWith('Options')) continue
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
      if (!(symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias))) continue
      for (const property of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol))) {
        const key = `${exported.name}.${property.name}`
        if (documented.has(property.name) || reported.has(key)) continue
        reported.add(key)
        problems.push(`option ${property.name} of ${exported.name} (${relative(root, entry)}) is in no option table of README.md or docs/`)
      }
    }
  }
}

for (const problem of problems) console.error(`docs check: ${problem}`)
if (problems.length > 0) process.exitCode = 1
else console.log(`docs check: the links of ${pages.length} pages resolve, and every public option is in an option table`)
