import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MemoryBlockstore } from 'blockstore-core/memory'
import fc from 'fast-check'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockStore, buildDag, readRange, sha256, blake3 } from '../src/index.js'
import { MiB, collect, pseudoRandom } from './helpers.js'
import type { CID } from 'multiformats/cid'
import type { MultihashHasher } from 'multiformats/hashes/interface'

async function importerCid (data: Uint8Array, chunkSize: number, maxChildrenPerNode: number): Promise<CID> {
  const bs = new MemoryBlockstore()
  let root: CID | undefined
  for await (const entry of importer([{ content: [data] }], bs, {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode })
  })) root = entry.cid
  if (root == null) throw new Error('importer yielded nothing')
  return root
}

async function ourCid (data: Uint8Array, chunkSize: number, maxChildrenPerNode: number, hasher: MultihashHasher = sha256): Promise<{ cid: CID, store: MemoryBlockStore }> {
  const store = new MemoryBlockStore()
  // feed odd-sized pieces so chunk boundaries never line up with input pieces
  async function * pieces (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < data.byteLength; i += 99_991) yield data.subarray(i, Math.min(i + 99_991, data.byteLength))
  }
  const { cid, size } = await buildDag(pieces(), { put: async b => { await store.put(b.cid, b.bytes) } }, { hasher, chunkSize, maxChildrenPerNode })
  assert.equal(size, data.byteLength)
  return { cid, store }
}

describe('balanced DAG builder', () => {
  for (const size of [0, Math.round(0.7 * MiB), MiB, MiB + 1, 3 * MiB, Math.round(5.5 * MiB)]) {
    it(`with SHA-256 gives the importer's CID for ${size} bytes (1 MiB chunks, 1024 links)`, async () => {
      const data = pseudoRandom(size, size + 1)
      const expected = await importerCid(data, MiB, 1024)
      const { cid, store } = await ourCid(data, MiB, 1024)
      assert.equal(cid.toString(), expected.toString())
      assert.deepEqual(new Uint8Array(await collect(readRange(c => store.get(c), cid, 0, size))), data)
    })
  }

  it('matches the importer on multi-level trees (small maxChildrenPerNode)', async () => {
    // 4 KiB chunks: 1 leaf, exact powers, one over, partial groups at each level
    for (const leaves of [2, 3, 4, 5, 9, 16, 17, 27, 28, 64, 65, 100]) {
      for (const max of [2, 3, 4]) {
        const data = pseudoRandom(leaves * 4096 - 100, leaves * 31 + max)
        const expected = await importerCid(data, 4096, max)
        const { cid, store } = await ourCid(data, 4096, max)
        assert.equal(cid.toString(), expected.toString(), `${leaves} leaves, ${max} links per node`)
        assert.deepEqual(new Uint8Array(await collect(readRange(c => store.get(c), cid, 0, data.byteLength))), data)
      }
    }
  })

  it('property: any size, chunk size and fan-out gives the importer CID and reads back any range', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 0, max: 40_000 }),
      fc.integer({ min: 64, max: 4096 }),
      fc.integer({ min: 2, max: 8 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      async (size, chunk, max, a, b) => {
        const data = pseudoRandom(size, size + chunk + max)
        const expected = await importerCid(data, chunk, max)
        const { cid, store } = await ourCid(data, chunk, max)
        assert.equal(cid.toString(), expected.toString())
        const offset = size === 0 ? 0 : a % size
        const length = size === 0 ? 0 : b % (size - offset + 1)
        const got = await collect(readRange(c => store.get(c), cid, offset, length))
        assert.deepEqual(new Uint8Array(got), data.subarray(offset, offset + length))
      }
    ), { numRuns: 60 })
  })

  it('with BLAKE3 produces blake3 multihashes for leaves and nodes', async () => {
    const data = pseudoRandom(2 * MiB + 5, 3)
    const { cid, store } = await ourCid(data, MiB, 1024, blake3)
    assert.equal(cid.code, 0x70)
    assert.equal(cid.multihash.code, 0x1e)
    assert.equal(store.size, 4)
  })

  it('never holds more than a chunk plus one group per level', async () => {
    // the sink sees leaves as they are cut: nothing waits for the end
    let seen = 0
    let maxPending = 0
    let produced = 0
    async function * source (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 20; i++) {
        produced += 4096
        maxPending = Math.max(maxPending, produced - seen)
        yield new Uint8Array(4096).fill(i)
      }
    }
    await buildDag(source(), { put: b => { if (b.cid.code === 0x55) seen += b.bytes.byteLength } }, { chunkSize: 4096, maxChildrenPerNode: 4 })
    assert.ok(maxPending <= 2 * 4096)
  })
})
