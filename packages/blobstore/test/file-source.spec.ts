import assert from 'node:assert/strict'
import { createReadStream, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, beforeEach, afterEach } from 'node:test'
import { buildDag, fileSource } from '../src/index.js'
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
})
