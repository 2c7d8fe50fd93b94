import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { decodeFlatMap, encodeWithBytes } from '../src/p2p/framing.js'

/** What the full decoder makes of a frame, or 'refused' */
function full (frame: Uint8Array): unknown {
  try { return dagCbor.decode(frame) } catch { return 'refused' }
}

/** A small deterministic generator (xorshift), so a failure can be replayed */
function rng (seed: number): () => number {
  let x = seed
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32 }
}

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

  it('decodeFlatMap reads a block frame as dag-cbor does, with the bytes a view of the frame', () => {
    for (const n of [0, 1, 23, 24, 255, 256, 65535, 65536, 1024 * 1024 + 3]) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 7 + n) & 0xff)
      const frame = encodeWithBytes({ type: 'block', cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }, bytes).subarray()
      const flat = decodeFlatMap(frame)
      assert.deepEqual(flat, dagCbor.decode(frame), `${n} bytes`)
      const view = flat!.bytes as Uint8Array
      assert.equal(view.buffer, frame.buffer, 'not a copy')
      assert.equal(view.byteOffset, frame.byteOffset + frame.byteLength - n)
    }
    assert.deepEqual(decodeFlatMap(dagCbor.encode({ type: 'end' })), { type: 'end' })
    assert.deepEqual(decodeFlatMap(dagCbor.encode({})), {})
  })

  it('decodeFlatMap leaves everything else to the full decoder', () => {
    // other values, or not a map
    for (const v of [{ type: 'want', cids: ['a'] }, { type: 'have', complete: true }, { n: 1 }, ['type'], 'block', new Uint8Array(3)]) {
      assert.equal(decodeFlatMap(dagCbor.encode(v)), undefined, JSON.stringify(v))
    }
    // a length not in its shortest form (0x78 0x04: a 4-byte string with a 1-byte length), which dag-cbor refuses
    const long = Uint8Array.of(0xa1, 0x78, 0x04, ...new TextEncoder().encode('type'), 0x63, ...new TextEncoder().encode('end'))
    assert.equal(decodeFlatMap(long), undefined)
    assert.equal(full(long), 'refused')
    // keys out of order, a key twice, a byte left over, cut short, a prototype key
    const enc = (s: string): number[] => [0x60 | s.length, ...new TextEncoder().encode(s)]
    for (const bad of [
      [0xa2, ...enc('type'), ...enc('x'), ...enc('cid'), ...enc('y')],
      [0xa2, ...enc('cid'), ...enc('x'), ...enc('cid'), ...enc('y')],
      [0xa1, ...enc('cid'), ...enc('x'), 0x00],
      [0xa1, ...enc('cid'), 0x63, 0x61],
      [0xa1, ...enc('__proto__'), ...enc('x')]
    ]) assert.equal(decodeFlatMap(Uint8Array.from(bad)), undefined, bad.join(','))
  })

  it('decodeFlatMap never decodes a frame otherwise than dag-cbor would (mutated and cut frames)', () => {
    const next = rng(0x9e3779b9)
    const base = [
      encodeWithBytes({ type: 'block', cid: 'bafkqaaa' }, Uint8Array.of(1, 2, 3, 250, 251)).subarray(),
      encodeWithBytes({ type: 'block', cid: 'bafkqaaa' }, new Uint8Array(300).fill(9)).subarray(),
      dagCbor.encode({ type: 'end' }),
      dagCbor.encode({ a: 'é', bb: new Uint8Array(2) })
    ]
    let accepted = 0
    for (let i = 0; i < 20_000; i++) {
      const frame = base[i % base.length].slice()
      const edits = 1 + Math.floor(next() * 3)
      for (let e = 0; e < edits; e++) frame[Math.floor(next() * frame.length)] = Math.floor(next() * 256)
      const cut = next() < 0.2 ? frame.subarray(0, Math.floor(next() * frame.length)) : frame
      const flat = decodeFlatMap(cut)
      if (flat === undefined) continue
      accepted++
      assert.deepEqual(flat, full(cut), Buffer.from(cut).toString('hex'))
    }
    assert.ok(accepted > 100, `some mutated frames are still valid flat maps (${accepted})`)
  })
})
