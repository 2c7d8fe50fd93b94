import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { encodeWithBytes } from '../src/p2p/framing.js'

describe('framing', () => {
  it('encodeWithBytes gives exactly the dag-cbor encoding, with the bytes not copied', () => {
    for (const n of [0, 1, 23, 24, 255, 256, 65535, 65536, 1024 * 1024, 2 * 1024 * 1024 + 7]) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff)
      const fields = { type: 'block', cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }
      const frame = encodeWithBytes(fields, bytes)
      assert.deepEqual(frame.subarray(), dagCbor.encode({ ...fields, bytes }), `${n} bytes`)
      assert.deepEqual(dagCbor.decode(frame.subarray()), { ...fields, bytes })
      // the last part is the caller's buffer itself
      assert.equal([...frame].at(-1), bytes)
    }
  })

  it('encodeWithBytes refuses a key that would sort after "bytes"', () => {
    assert.throws(() => encodeWithBytes({ length: 1 }, new Uint8Array(1)), TypeError)
    assert.throws(() => encodeWithBytes({ bytes: 1 }, new Uint8Array(1)), TypeError)
  })
})
