import assert from 'node:assert/strict'
import { describe, it, afterEach } from 'node:test'
import * as dagPb from '@ipld/dag-pb'
import fc from 'fast-check'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { BlobStoreError, blake3, parseCid } from '../src/index.js'
import { pseudoRandom, tempStore } from './helpers.js'
import type { TempStore } from './helpers.js'

const CID_ERRORS = ['ERR_INVALID_CID', 'ERR_UNSUPPORTED_CODEC', 'ERR_UNSUPPORTED_HASH']

function b3 (bytes: Uint8Array): CID['multihash'] {
  return blake3.digest(bytes) as CID['multihash']
}

function node (data: UnixFS, links: CID[], tsizes: number[]): { cid: CID, bytes: Uint8Array } {
  const bytes = dagPb.encode(dagPb.prepare({ Data: data.marshal(), Links: links.map((Hash, i) => ({ Hash, Name: '', Tsize: tsizes[i] })) }))
  return { cid: CID.createV1(dagPb.code, b3(bytes)), bytes }
}

describe('inputs from peers and clients', () => {
  let t: TempStore
  afterEach(async () => { await t?.cleanup() })

  it('parseCid: any string either parses or fails with a CID error code', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('b', 'z', 'Qm', 'bafy', 'bafkr4i')), (s) => {
      try {
        const cid = parseCid(s)
        assert.equal(cid.version, 1)
      } catch (err) {
        assert.ok(err instanceof BlobStoreError)
        assert.ok(CID_ERRORS.includes(err.code), err.code)
      }
    }), { numRuns: 2000 })
  })

  it('parseCid: mutated valid CIDs never slip through as something else', () => {
    const good = 'bafkr4ieojr6bxgo37viopkkrqx7k2xxbish2sbfc7xlxr2xv6ln72yu2te'
    fc.assert(fc.property(fc.nat({ max: good.length - 1 }), fc.string({ minLength: 1, maxLength: 1 }), (i, c) => {
      const s = good.slice(0, i) + c + good.slice(i + 1)
      try {
        const cid = parseCid(s)
        assert.equal(cid.multihash.size, 32)
      } catch (err) {
        assert.ok(err instanceof BlobStoreError && CID_ERRORS.includes(err.code))
      }
    }), { numRuns: 1000 })
  })

  it('random bytes posing as dag-pb blocks are refused with ERR_INVALID_DAG, never a crash', async () => {
    t = tempStore()
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
      const cid = CID.createV1(dagPb.code, b3(bytes))
      const s = await t.store.session()
      try {
        await s.putBlock(cid, bytes)
        await s.commit(cid)
        // a few byte strings are valid UnixFS files with no links; fine
      } catch (err: any) {
        assert.ok(err instanceof BlobStoreError, String(err))
        assert.ok(['ERR_INVALID_DAG', 'ERR_INCOMPLETE_DAG', 'ERR_UNSUPPORTED_CODEC', 'ERR_UNSUPPORTED_HASH', 'ERR_INVALID_CID'].includes(err.code), err.code)
      } finally {
        await s.release()
      }
    }), { numRuns: 300 })
  })

  it('a DAG whose sizes lie is refused at commit and nothing is registered', async () => {
    t = tempStore()
    const a = pseudoRandom(1000, 1)
    const b = pseudoRandom(999, 2)
    const la = CID.createV1(raw.code, b3(a))
    const lb = CID.createV1(raw.code, b3(b))
    const lying = new UnixFS({ type: 'file', blockSizes: [1000n, 1000n] })
    const root = node(lying, [la, lb], [1000, 999])
    const s = await t.store.session()
    await s.putBlock(la, a)
    await s.putBlock(lb, b)
    await s.putBlock(root.cid, root.bytes)
    await assert.rejects(s.commit(root.cid), (err: any) => err.code === 'ERR_INVALID_DAG')
    await s.release()
    assert.equal(await t.store.has(root.cid), false)
    assert.equal((await t.store.usage()).blocks.count, 0)

    // a directory is not a file
    const dir = node(new UnixFS({ type: 'directory' }), [], [])
    const s2 = await t.store.session()
    await s2.putBlock(dir.cid, dir.bytes)
    await assert.rejects(s2.commit(dir.cid), (err: any) => err.code === 'ERR_INVALID_DAG')
    await s2.release()
  })

  it('a SHA-256 UnixFS DAG from an IPFS peer is accepted and read back', async () => {
    t = tempStore()
    const a = pseudoRandom(1000, 1)
    const b = pseudoRandom(999, 2)
    const { sha256 } = await import('../src/index.js')
    const la = CID.createV1(raw.code, sha256.digest(a) as CID['multihash'])
    const lb = CID.createV1(raw.code, sha256.digest(b) as CID['multihash'])
    const f = new UnixFS({ type: 'file', blockSizes: [1000n, 999n] })
    const bytes = dagPb.encode(dagPb.prepare({ Data: f.marshal(), Links: [{ Hash: la, Name: '', Tsize: 1000 }, { Hash: lb, Name: '', Tsize: 999 }] }))
    const root = CID.createV1(dagPb.code, sha256.digest(bytes) as CID['multihash'])
    const s = await t.store.session()
    await s.putBlock(root.toV0().toString(), bytes)
    assert.equal((await s.missing(root)).length, 2)
    await s.putBlock(la, a)
    await s.putBlock(lb, b)
    const res = await s.commit(root, { layer: 'gift' })
    assert.equal(res.size, 1999)
    const parts = []
    for await (const p of t.store.cat(root.toV0().toString(), { offset: 990, length: 20 })) parts.push(p)
    assert.deepEqual(new Uint8Array(Buffer.concat(parts)), new Uint8Array([...a.subarray(990), ...b.subarray(0, 10)]))
  })
})
