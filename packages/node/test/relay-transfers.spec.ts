import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { relayCarries } from '../src/blocks/protocol.js'

const MiB = 1024 * 1024

describe('HEARTH_RELAY_TRANSFERS', () => {
  const relayed = { limits: { bytes: 32n * BigInt(MiB) } }

  it('limited: a relayed connection carries what fits in its data limit, and not what does not', () => {
    assert.equal(relayCarries('limited', relayed, 4 * MiB, true), true)
    assert.equal(relayCarries('limited', relayed, 64 * MiB, true), false, 'a blob larger than the relay allows waits for a direct connection')
    // the DAG's links and the frames come on top of the file's bytes
    assert.equal(relayCarries('limited', relayed, 32 * MiB, true), false)
    assert.equal(relayCarries('limited', relayed, undefined, true), true, 'an unknown size is let through')
    assert.equal(relayCarries('limited', {}, 64 * MiB, true), true, 'a relay without a data limit')
  })

  it('allow carries anything over a relay, never nothing; a direct connection carries anything in every mode', () => {
    fc.assert(fc.property(fc.nat({ max: 2 ** 40 }), fc.bigInt({ min: 0n, max: 2n ** 40n }), (size, limit) => {
      const conn = { limits: { bytes: limit } }
      assert.equal(relayCarries('allow', conn, size, true), true)
      assert.equal(relayCarries('never', conn, size, true), false)
      for (const mode of ['limited', 'allow', 'never'] as const) assert.equal(relayCarries(mode, conn, size, false), true)
      // limited never lets through more than the limit
      if (relayCarries('limited', conn, size, true)) assert.ok(BigInt(size) < limit)
    }))
  })
})
