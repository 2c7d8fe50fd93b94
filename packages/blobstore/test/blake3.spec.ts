import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { hash } from 'blake3'
import { createBlobStore, blake3 } from '../src/index.js'
import { MiB, collect, pseudoRandom, tempStore } from './helpers.js'

const require = createRequire(import.meta.url)

describe('BLAKE3', () => {
  it('is the native addon (@c4312/blake3-native), not a WASM fallback', async (t) => {
    // `blake3` resolves to its CommonJS entry, which requires the native
    // package; its compiled binding must be among the loaded modules
    hash(new Uint8Array(1))
    const loaded = Object.keys(require.cache)
    assert.ok(loaded.some(p => p.includes('@c4312/blake3-native') && p.endsWith('blake3.node')), 'native .node binding loaded')
    assert.ok(!loaded.some(p => p.includes('blake3-wasm')), 'no WASM build loaded')
    // Speed is plausible for native code: measured against OpenSSL's SHA-256
    // in the same run (best of 5, so machine load affects both alike).
    // Native BLAKE3 beats SHA-256 (1.3-3x here); the WASM builds run at
    // 0.2-0.65 GB/s, well under it.
    const buf = new Uint8Array(16 * MiB)
    const best = (fn: () => unknown): number => {
      let b = Infinity
      for (let i = 0; i < 5; i++) {
        const t0 = process.hrtime.bigint()
        fn()
        b = Math.min(b, Number(process.hrtime.bigint() - t0))
      }
      return b
    }
    const b3 = best(() => hash(buf))
    const sha = best(() => createHash('sha256').update(buf).digest())
    t.diagnostic(`BLAKE3 ${(buf.byteLength / b3).toFixed(2)} GB/s, SHA-256 ${(buf.byteLength / sha).toFixed(2)} GB/s`)
    assert.ok(sha / b3 > 0.8, `BLAKE3 is ${(sha / b3).toFixed(2)}x SHA-256: too slow for the native addon`)
  })

  it('the multiformats hasher matches blake3 and the known test vector', () => {
    const empty = blake3.digest(new Uint8Array(0)) as { digest: Uint8Array, code: number }
    assert.equal(empty.code, 0x1e)
    assert.equal(Buffer.from(empty.digest).toString('hex'), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262')
  })

  it('a blob of at most 1 MiB is one raw block whose digest is its b3sum', async () => {
    const t = tempStore()
    try {
      const hasB3sum = spawnSync('which', ['b3sum']).status === 0
      for (const size of [0, 1, 1000, MiB - 1, MiB]) {
        const data = pseudoRandom(size, size + 7)
        const { cid, blocks } = await t.store.add(data)
        assert.equal(cid.version, 1)
        assert.equal(cid.code, 0x55)
        assert.equal(cid.multihash.code, 0x1e)
        assert.equal(cid.multihash.size, 32)
        assert.equal(blocks, 1)
        assert.ok(cid.toString().startsWith('b'), 'base32')
        const hex = Buffer.from(cid.multihash.digest).toString('hex')
        assert.equal(hex, Buffer.from(hash(data)).toString('hex'))
        if (hasB3sum) {
          const file = join(t.dir, `f${size}`)
          writeFileSync(file, data)
          const out = execFileSync('b3sum', ['--no-names', file]).toString().trim()
          assert.equal(hex, out, `b3sum of ${size} bytes`)
        }
        assert.deepEqual(new Uint8Array(await collect(t.store.cat(cid))), data)
      }
      if (!hasB3sum) process.stderr.write('# b3sum not installed: compared against the blake3 module only\n')
    } finally {
      await t.cleanup()
    }
  })

  it('createBlobStore needs a path', () => {
    assert.throws(() => createBlobStore({} as any), TypeError)
  })
})
