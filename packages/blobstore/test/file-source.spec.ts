import assert from 'node:assert/strict'
import { createReadStream, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, beforeEach, afterEach } from 'node:test'
import { blake3, buildDag, fileSource } from '../src/index.js'
import { leafHashAddon } from '../src/leaf-hash.js'
import { MiB, collect, pseudoRandom, tempStore } from './helpers.js'
import type { TempStore } from './helpers.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }

describe('fileSource', () => {
  let t: TempStore
  beforeEach(() => { t = tempStore() })
  afterEach(async () => { await t.cleanup() })

  for (const size of [0, 1, MiB - 1, MiB, 3 * MiB + 5]) {
    it(`a ${size}-byte file gives its bytes, the store's CID and a blob that reads back`, async () => {
      const data = pseudoRandom(size, size + 1)
      const file = join(t.dir, 'f.bin')
      writeFileSync(file, data)
      const parts: Uint8Array[] = []
      // each chunk is only valid until the next but one: keep copies
      for await (const c of fileSource(file)) parts.push(new Uint8Array(c))
      assert.deepEqual(new Uint8Array(Buffer.concat(parts)), data)
      const expected = await buildDag(createReadStream(file, { highWaterMark: 64 * 1024 }), { put: () => {} })
      assert.equal((await buildDag(fileSource(file), { put: () => {} })).cid.toString(), expected.cid.toString())
      const added = await t.store.add(fileSource(file))
      assert.equal(added.cid.toString(), expected.cid.toString())
      assert.deepEqual(new Uint8Array(await collect(t.store.cat(added.cid))), data)
    })
  }

  it('reuses two buffers, reads from an offset in pieces of any size, and stops on abort', async () => {
    const data = pseudoRandom(10 * 1000 + 7, 3)
    const file = join(t.dir, 'f.bin')
    writeFileSync(file, data)
    const seen = new Set<ArrayBufferLike>()
    const parts: Uint8Array[] = []
    for await (const c of fileSource(file, { readSize: 1000, start: 7 })) {
      seen.add(c.buffer)
      parts.push(new Uint8Array(c))
    }
    assert.equal(seen.size, 2)
    assert.deepEqual(new Uint8Array(Buffer.concat(parts)), data.subarray(7))
    const abort = new AbortController()
    await assert.rejects(async () => {
      for await (const _ of fileSource(file, { readSize: 1000, signal: abort.signal })) abort.abort()
    }, code('ERR_ABORTED'))
    await assert.rejects(async () => { for await (const _ of fileSource(file, { readSize: 0 })) { /* nothing */ } }, code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(async () => { for await (const _ of fileSource(join(t.dir, 'missing'))) { /* nothing */ } }, (err: any) => err?.code === 'ENOENT')
  })

  it('hashes each leaf as it reads it (the addon), so an add does not hash it again', async () => {
    const data = pseudoRandom(3 * MiB + 5, 8)
    const file = join(t.dir, 'f.bin')
    writeFileSync(file, data)
    const addon = leafHashAddon()
    assert.ok(addon != null, 'the leaf-hash addon loads')
    const readHashed = addon.readHashed
    const digest = blake3.digest
    let reads = 0
    let hashed = 0
    addon.readHashed = async (...args) => { reads++; return await readHashed(...args) }
    ;(blake3 as any).digest = (bytes: Uint8Array) => { hashed++; return digest.call(blake3, bytes) }
    try {
      const off = await t.store.add(fileSource(file, { hashWhileReading: false }))
      assert.deepEqual([reads, hashed], [0, 5], 'without it: four leaves and the root hashed here')
      hashed = 0
      const on = await t.store.add(fileSource(file, { hashWhileReading: true }))
      // three full leaves came with their digests; the 5-byte tail (assembled by the chunker) and the root are hashed here
      assert.deepEqual([reads, hashed], [4, 2])
      assert.equal(on.cid.toString(), off.cid.toString())
      assert.deepEqual(new Uint8Array(await collect(t.store.cat(on.cid))), data)
      // a chunk size other than the reads' cuts leaves from several reads: each is hashed here
      hashed = 0
      const small = await buildDag(fileSource(file), { put: () => {} }, { chunkSize: 256 * 1024 })
      assert.ok(hashed > 12, `${hashed} digests`)
      assert.equal(small.size, data.byteLength)
    } finally {
      addon.readHashed = readHashed
      ;(blake3 as any).digest = digest
    }
  })
})
