// The exported store contract, run under tap: each case is a subtest that counts one
// passing point once its node:assert checks have all held.
import type { Test } from 'tap'
import type { DeclareTest } from '../../lib/testing/contract.js'

export function declareWith (t: Test): DeclareTest {
  return (name, fn) => t.test(name, async (t) => {
    await fn()
    t.pass(name)
  })
}
