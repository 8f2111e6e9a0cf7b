// Random ids and refresh tokens from the pooled CSPRNG blocks: right length and alphabet,
// never repeated, never the zeros a used byte is overwritten with, across many blocks.
import t from 'tap'
import { mintRefreshToken, parseRefreshToken, randomBase64url, randomId } from '../../lib/domain/refresh-tokens.js'

t.test('ids are 22 base64url characters, all distinct, across many 4 KiB blocks', async (t) => {
  const ids = new Set<string>()
  // 16 bytes each: 5,000 ids span about twenty blocks, and the last of each block is cut short.
  for (let i = 0; i < 5000; i++) ids.add(randomId())
  t.equal(ids.size, 5000, 'no id repeats')
  t.ok([...ids].every(id => /^[A-Za-z0-9_-]{22}$/.test(id)), 'every id is 22 base64url characters')
  t.notOk(ids.has('AAAAAAAAAAAAAAAAAAAAAA'), 'no id is made of zeroed bytes')
})

t.test('the bytes are spread evenly: no byte value stands out over 1 MiB', async (t) => {
  const counts = new Array<number>(256).fill(0)
  for (let i = 0; i < 1024 * 32; i++) {
    for (const byte of Buffer.from(randomBase64url(32), 'base64url')) counts[byte]++
  }
  // 4,096 expected per value; a CSPRNG stays within a few percent, a zeroed or repeated block would not.
  t.ok(Math.min(...counts) > 3600 && Math.max(...counts) < 4600, `per-value counts between ${Math.min(...counts)} and ${Math.max(...counts)}`)
})

t.test('refresh tokens carry the user and session and 256 fresh bits each', async (t) => {
  const a = mintRefreshToken('alice', randomId())
  const b = mintRefreshToken('alice', randomId())
  t.not(a, b)
  t.equal(a.split('.')[2].length, 43)
  t.same(parseRefreshToken(a)?.userId, 'alice')
})
