import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { Readable } from 'node:stream'
import { describe, it, beforeEach, afterEach } from 'node:test'
import { CarBlockIterator } from '@ipld/car/iterator'
import Sqlite from 'better-sqlite3'
import fc from 'fast-check'
import { hash } from 'blake3'
import { MiB, collect, pseudoRandom, tempStore } from './helpers.js'
import { matchesCid } from '../src/index.js'
import type { TempStore } from './helpers.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }

describe('blob store: add, read, stat', () => {
  let t: TempStore
  beforeEach(() => { t = tempStore() })
  afterEach(async () => { await t.cleanup() })

  it('adds a Node Readable stream and reads it back', async () => {
    const data = pseudoRandom(3 * MiB + 12345, 9)
    const res = await t.store.add(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { contentType: 'application/octet-stream' })
    assert.equal(res.size, data.byteLength)
    assert.equal(res.cid.code, 0x70)
    assert.equal(res.blocks, 5)
    assert.deepEqual(new Uint8Array(await collect(t.store.cat(res.cid))), data)
    const stat = await t.store.stat(res.cid.toString())
    assert.equal(stat.size, data.byteLength)
    assert.equal(stat.blocks, 5)
    assert.equal(stat.contentType, 'application/octet-stream')
    assert.deepEqual(stat.layers, ['sovereign'])
    assert.equal(await t.store.has(res.cid), true)
  })

  it('is deterministic and deduplicates identical content', async () => {
    const data = pseudoRandom(2 * MiB + 1, 4)
    const a = await t.store.add(data)
    const b = await t.store.add(data, { layer: 'gift' })
    assert.equal(a.cid.toString(), b.cid.toString())
    const u = await t.store.usage()
    assert.equal(u.blocks.count, 4)
    assert.equal(u.layers.sovereign.used_bytes, a.dagBytes)
    assert.equal(u.layers.gift.used_bytes, a.dagBytes)
  })

  it('a blob of identical leaves stores each distinct block once', async () => {
    const res = await t.store.add(new Uint8Array(4 * MiB))
    assert.equal(res.blocks, 2)
    assert.equal(res.dagBytes, MiB + (await t.store.getBlock(res.cid)).byteLength)
    assert.deepEqual(new Uint8Array(await collect(t.store.cat(res.cid))), new Uint8Array(4 * MiB))
  })

  it('reads byte ranges, reading only the leaves needed', async () => {
    const data = pseudoRandom(5 * MiB + 7, 2)
    const { cid } = await t.store.add(data)
    for (const [offset, length] of [[0, 1], [MiB - 1, 2], [2 * MiB + 5, MiB], [5 * MiB, 7], [5 * MiB + 6, 100], [123, 0]]) {
      const got = await collect(t.store.cat(cid, { offset, length }))
      assert.deepEqual(new Uint8Array(got), data.subarray(offset, Math.min(offset + length, data.byteLength)), `${offset}+${length}`)
    }
    const r = await t.store.read(cid, { offset: 4 * MiB })
    assert.equal(r.length, MiB + 7)
    assert.equal(r.stat.size, data.byteLength)
    assert.deepEqual(new Uint8Array(await collect(r.body)), data.subarray(4 * MiB))
  })

  it('property: random sizes and ranges round-trip', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 2 * MiB + 5000 }), fc.nat(), fc.nat(), async (size, a, b) => {
      const data = pseudoRandom(size, size + 3)
      const { cid } = await t.store.add(data, { layer: 'cache' })
      if (size === 0) {
        assert.equal((await collect(t.store.cat(cid))).byteLength, 0)
        return
      }
      const offset = a % size
      const length = b % (size - offset + 1)
      const got = await collect(t.store.cat(cid, { offset, length }))
      assert.deepEqual(new Uint8Array(got), data.subarray(offset, offset + length))
    }), { numRuns: 25 })
  })

  it('rejects unsatisfiable ranges with the size attached', async () => {
    const { cid } = await t.store.add(pseudoRandom(1000, 1))
    await assert.rejects(t.store.read(cid, { offset: 1000 }), (err: any) => { assert.equal(err.code, 'ERR_RANGE_NOT_SATISFIABLE'); assert.equal(err.size, 1000); return true })
    await assert.rejects(t.store.read(cid, { offset: -1 }), code('ERR_RANGE_NOT_SATISFIABLE'))
    await assert.rejects(t.store.read(cid, { offset: 1.5 }), code('ERR_RANGE_NOT_SATISFIABLE'))
    await assert.rejects(t.store.read(cid, { length: -3 }), code('ERR_RANGE_NOT_SATISFIABLE'))
    await assert.rejects(collect(t.store.cat(cid, { offset: 5000 })), code('ERR_RANGE_NOT_SATISFIABLE'))
    // clamped like HTTP
    assert.equal((await t.store.read(cid, { offset: 990, length: 1e6 })).length, 10)
    const empty = await t.store.add(new Uint8Array(0))
    assert.equal((await t.store.read(empty.cid)).length, 0)
    await assert.rejects(t.store.read(empty.cid, { offset: 1 }), code('ERR_RANGE_NOT_SATISFIABLE'))
  })

  it('validates CIDs and options', async () => {
    await assert.rejects(t.store.stat('not-a-cid'), code('ERR_INVALID_CID'))
    await assert.rejects(t.store.stat(''), code('ERR_INVALID_CID'))
    await assert.rejects(t.store.stat('b'.repeat(300)), code('ERR_INVALID_CID'))
    await assert.rejects(t.store.stat(42 as any), code('ERR_INVALID_CID'))
    // a dag-cbor CID is well formed but not something this store holds
    await assert.rejects(t.store.stat('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), code('ERR_UNSUPPORTED_CODEC'))
    const missing = 'bafkr4ieojr6bxgo37viopkkrqx7k2xxbish2sbfc7xlxr2xv6ln72yu2te'
    await assert.rejects(t.store.stat(missing), code('ERR_BLOB_NOT_FOUND'))
    await assert.rejects(t.store.getBlock(missing), code('ERR_BLOCK_NOT_FOUND'))
    await assert.rejects(collect(t.store.cat(missing)), code('ERR_BLOB_NOT_FOUND'))
    await assert.rejects(t.store.add(new Uint8Array(1), { layer: 'bogus' as any }), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(t.store.add(new Uint8Array(1), { contentType: 'text/html\r\nX-Evil: 1' }), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(t.store.add(new Uint8Array(1), { owner: 'has space' }), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(t.store.add([1, 2, 3] as any), code('ERR_INVALID_ARGUMENT'))
    assert.equal((await t.store.usage()).blocks.count, 0, 'rejected adds leave nothing')
    assert.equal((await t.store.usage()).sessions, 0)
  })

  it('accepts upper-case base32 strings for the same blob', async () => {
    const { cid } = await t.store.add(pseudoRandom(10, 10))
    assert.equal((await t.store.stat(cid.toString().toUpperCase())).cid.toString(), cid.toString())
  })

  it('an add whose source fails midway leaves nothing', async () => {
    async function * failing (): AsyncGenerator<Uint8Array> {
      yield pseudoRandom(20 * MiB, 5)
      throw new Error('connection reset')
    }
    await assert.rejects(t.store.add(failing()), /connection reset/)
    const u = await t.store.usage()
    assert.equal(u.blocks.count, 0)
    assert.equal(u.sessions, 0)
    assert.equal((await t.store.list()).length, 0)
  })

  it('an aborted add leaves nothing', async () => {
    const ac = new AbortController()
    async function * slow (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 40; i++) {
        if (i === 20) ac.abort()
        yield pseudoRandom(MiB, i)
      }
    }
    await assert.rejects(t.store.add(slow(), { signal: ac.signal }), code('ERR_ABORTED'))
    assert.equal((await t.store.usage()).blocks.count, 0)
  })

  it('reports progress', async () => {
    const seen: number[] = []
    await t.store.add(pseudoRandom(3 * MiB, 1), { onProgress: n => seen.push(n) })
    assert.deepEqual(seen, [MiB, 2 * MiB, 3 * MiB])
  })

  it('lists blobs with a cursor', async () => {
    const cids = []
    for (let i = 0; i < 5; i++) cids.push((await t.store.add(pseudoRandom(100, i + 1))).cid.toString())
    const first = await t.store.list({ limit: 3 })
    const rest = await t.store.list({ after: first[2].cid, limit: 3 })
    assert.equal(first.length, 3)
    assert.equal(rest.length, 2)
    assert.deepEqual([...first, ...rest].map(b => b.cid.toString()).sort(), cids.sort())
  })

  it('exports a CAR of the DAG with every block once, verified', async () => {
    const data = pseudoRandom(3 * MiB, 8)
    const { cid, blocks } = await t.store.add(data)
    const car = await collect(t.store.exportCar(cid))
    const iter = await CarBlockIterator.fromIterable((async function * () { yield car })())
    assert.deepEqual((await iter.getRoots()).map(String), [cid.toString()])
    let n = 0
    for await (const b of iter) {
      assert.ok(matchesCid(b.cid, b.bytes))
      n++
    }
    assert.equal(n, blocks)
    const held = []
    for await (const b of t.store.blocksOf(cid)) held.push(b.cid.toString())
    assert.equal(held.length, blocks)
  })

  it('getBlock and putBlock verify; a session downloads a DAG block by block and commits it', async () => {
    const src = tempStore()
    try {
      const data = pseudoRandom(3 * MiB + 1, 77)
      const { cid } = await src.store.add(data)
      const s = await t.store.session()
      assert.deepEqual((await s.missing(cid)).map(String), [cid.toString()])
      await assert.rejects(s.commit(cid), code('ERR_INCOMPLETE_DAG'))
      // fetch what is missing until nothing is
      for (;;) {
        const missing = await s.missing(cid)
        if (missing.length === 0) break
        for (const m of missing) {
          const bytes = await src.store.getBlock(m)
          const bad = new Uint8Array(bytes)
          bad[bad.length - 1] ^= 1
          await assert.rejects(s.putBlock(m, bad), code('ERR_BLOCK_VERIFICATION'))
          await s.putBlock(m, bytes)
        }
      }
      // a GC while the download is in flight keeps its blocks
      await t.store.gc()
      const partial = []
      for await (const b of t.store.blocksOf(cid)) partial.push(b)
      assert.equal(partial.length, 5)
      const res = await s.commit(cid, { layer: 'reciprocal', owner: 'agent-1', contentType: 'video/mp4' })
      assert.equal(res.size, data.byteLength)
      assert.deepEqual(new Uint8Array(await collect(t.store.cat(cid))), data)
      const stat = await t.store.stat(cid)
      assert.deepEqual(stat.layers, ['reciprocal'])
      assert.equal(stat.pins[0].owner, 'agent-1')
      await assert.rejects(s.putBlock(cid, await src.store.getBlock(cid)), code('ERR_SESSION_CLOSED'))
      assert.equal((await t.store.usage()).sessions, 0)
    } finally {
      await src.cleanup()
    }
  })

  it('a released session deletes the blocks only it held', async () => {
    const s = await t.store.session()
    const data = pseudoRandom(5000, 1)
    const kept = await t.store.add(data)
    const other = new Uint8Array(5000).fill(7)
    const { cid: otherCid } = await (async () => {
      const tmp = tempStore()
      try { return await tmp.store.add(other) } finally { await tmp.cleanup() }
    })()
    await s.putBlock(kept.cid, data)
    await s.putBlock(otherCid, other)
    await s.release()
    assert.equal(await t.store.hasBlock(kept.cid), true)
    assert.equal(await t.store.hasBlock(otherCid), false)
  })

  it('the digest of a raw blob equals blake3 of its bytes', async () => {
    const data = pseudoRandom(777, 1)
    const { cid } = await t.store.add(data)
    assert.deepEqual(Buffer.from(cid.multihash.digest), Buffer.from(hash(data)))
  })

  it('refuses a second open of the same file and works again after close', async () => {
    const { createBlobStore } = await import('../src/index.js')
    assert.throws(() => createBlobStore({ path: t.path, busyTimeoutMs: 50 }), code('ERR_STORE_LOCKED'))
    const { cid } = await t.store.add(pseudoRandom(10, 1))
    await t.reopen()
    assert.equal(await t.store.has(cid), true)
  })

  it('the file has 64 KiB pages and a rollback journal, not a WAL', async () => {
    await t.store.add(pseudoRandom(10, 1))
    await t.store.close()
    const db = new Sqlite(t.path, { readonly: true })
    try {
      assert.equal(db.pragma('page_size', { simple: true }), 65536)
      assert.notEqual(db.pragma('journal_mode', { simple: true }), 'wal')
      assert.equal(existsSync(`${t.path}-wal`), false)
    } finally {
      db.close()
    }
  })

  it('operations after close fail with ERR_STORE_CLOSED; close is idempotent', async () => {
    await t.store.close()
    await t.store.close()
    await assert.rejects(t.store.add(new Uint8Array(1)), code('ERR_STORE_CLOSED'))
    await assert.rejects(t.store.stat('bafkr4ieojr6bxgo37viopkkrqx7k2xxbish2sbfc7xlxr2xv6ln72yu2te'), code('ERR_STORE_CLOSED'))
  })
})
