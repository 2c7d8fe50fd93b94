/**
 * Compliance suite for the BlockStore contract, in the spirit of
 * `interface-blockstore-tests`. Run it against any implementation:
 *
 * ```ts
 * import { blockStoreTests } from '@hearth/blobstore/test-suite'
 * blockStoreTests({ name: 'memory', setup: async () => new MemoryBlockStore(), teardown: async () => {} })
 * ```
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it, beforeEach, afterEach } from 'node:test'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { MAX_BLOCK_SIZE } from './constants.js'
import { blake3, sha256 } from './hashers.js'
import type { BlockStore } from './index.js'

export interface BlockStoreTestOptions<S extends BlockStore> {
  name: string
  setup: () => Promise<S>
  teardown: (store: S) => Promise<void>
}

function rawBlock (bytes: Uint8Array, hasher: typeof blake3 | typeof sha256 = blake3): { cid: CID, bytes: Uint8Array } {
  const d = hasher.digest(bytes)
  if (d instanceof Promise) throw new Error('sync hasher expected')
  return { cid: CID.createV1(raw.code, d), bytes }
}

async function rejectsWithCode (p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: any) => { assert.equal(err?.code, code); return true })
}

export function blockStoreTests<S extends BlockStore> (options: BlockStoreTestOptions<S>): void {
  describe(`BlockStore compliance: ${options.name}`, () => {
    let store: S

    beforeEach(async () => { store = await options.setup() })
    afterEach(async () => { await options.teardown(store) })

    it('puts, has and gets a BLAKE3 raw block', async () => {
      const b = rawBlock(randomBytes(1000))
      assert.equal(await store.has(b.cid), false)
      await store.put(b.cid, b.bytes)
      assert.equal(await store.has(b.cid), true)
      assert.deepEqual(new Uint8Array(await store.get(b.cid)), new Uint8Array(b.bytes))
    })

    it('accepts SHA-256 blocks and dag-pb blocks', async () => {
      const b = rawBlock(randomBytes(100), sha256)
      await store.put(b.cid, b.bytes)
      assert.equal(await store.has(b.cid), true)
      const node = dagPb.encode(dagPb.prepare({ Data: new Uint8Array([8, 2]), Links: [{ Hash: b.cid, Name: '', Tsize: 100 }] }))
      const d = blake3.digest(node) as Awaited<ReturnType<typeof blake3.digest>>
      const cid = CID.createV1(dagPb.code, d)
      await store.put(cid, node)
      assert.deepEqual(new Uint8Array(await store.get(cid)), node)
    })

    it('accepts the empty block', async () => {
      const b = rawBlock(new Uint8Array(0))
      await store.put(b.cid, b.bytes)
      assert.equal((await store.get(b.cid)).byteLength, 0)
    })

    it('put is idempotent', async () => {
      const b = rawBlock(randomBytes(64))
      await store.put(b.cid, b.bytes)
      await store.put(b.cid, b.bytes)
      assert.deepEqual(new Uint8Array(await store.get(b.cid)), new Uint8Array(b.bytes))
    })

    it('rejects bytes that do not hash to the CID and stores nothing', async () => {
      const b = rawBlock(randomBytes(64))
      const bad = new Uint8Array(b.bytes)
      bad[0] ^= 1
      await rejectsWithCode(store.put(b.cid, bad), 'ERR_BLOCK_VERIFICATION')
      assert.equal(await store.has(b.cid), false)
    })

    it('rejects blocks over the size cap', async () => {
      const b = rawBlock(new Uint8Array(MAX_BLOCK_SIZE + 1))
      await rejectsWithCode(store.put(b.cid, b.bytes), 'ERR_BLOCK_TOO_LARGE')
      assert.equal(await store.has(b.cid), false)
    })

    it('rejects unsupported hashes and codecs', async () => {
      const bytes = randomBytes(10)
      const id = CID.createV1(raw.code, identity.digest(bytes))
      await rejectsWithCode(store.put(id, bytes), 'ERR_UNSUPPORTED_HASH')
      const d = blake3.digest(bytes) as Awaited<ReturnType<typeof blake3.digest>>
      const cbor = CID.createV1(0x71, d)
      await rejectsWithCode(store.put(cbor, bytes), 'ERR_UNSUPPORTED_CODEC')
    })

    it('get of a missing block fails with ERR_BLOCK_NOT_FOUND', async () => {
      await rejectsWithCode(store.get(rawBlock(randomBytes(8)).cid), 'ERR_BLOCK_NOT_FOUND')
    })

    it('rejects values that are not CIDs', async () => {
      await rejectsWithCode(store.get('not a cid' as any), 'ERR_INVALID_CID')
      await rejectsWithCode(store.has({} as any), 'ERR_INVALID_CID')
    })

    it('deletes, and deleting a missing block is not an error', async () => {
      const b = rawBlock(randomBytes(32))
      await store.put(b.cid, b.bytes)
      await store.delete(b.cid)
      assert.equal(await store.has(b.cid), false)
      await store.delete(b.cid)
    })

    it('returns copies: mutating what get returned does not change the store', async () => {
      const b = rawBlock(randomBytes(32))
      await store.put(b.cid, b.bytes)
      const got = await store.get(b.cid)
      got[0] ^= 0xff
      assert.deepEqual(new Uint8Array(await store.get(b.cid)), new Uint8Array(b.bytes))
    })

    it('round-trips many blocks of random sizes, concurrently', async () => {
      const blocks = Array.from({ length: 50 }, (_, i) => rawBlock(randomBytes((i * 7919) % 70000)))
      await Promise.all(blocks.map(async b => { await store.put(b.cid, b.bytes) }))
      for (const b of blocks) assert.deepEqual(new Uint8Array(await store.get(b.cid)), new Uint8Array(b.bytes))
    })
  })
}
