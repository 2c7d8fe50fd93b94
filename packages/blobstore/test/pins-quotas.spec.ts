import assert from 'node:assert/strict'
import { describe, it, afterEach } from 'node:test'
import { MiB, chunked, collect, pseudoRandom, tempStore } from './helpers.js'
import type { TempStore } from './helpers.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }

describe('pins, layers and quotas', () => {
  let t: TempStore
  afterEach(async () => { await t.cleanup() })

  it('pins in layers with owners; usage charges each layer that pins a blob once', async () => {
    t = tempStore()
    const a = await t.store.add(pseudoRandom(2 * MiB, 1), { layer: 'sovereign' })
    await t.store.pin(a.cid, { layer: 'gift', owner: 'agent-a' })
    await t.store.pin(a.cid, { layer: 'gift', owner: 'agent-b' })
    await t.store.pin(a.cid, { layer: 'gift', owner: 'agent-b' }) // idempotent
    const u = await t.store.usage()
    assert.equal(u.layers.sovereign.used_bytes, a.dagBytes)
    assert.equal(u.layers.gift.used_bytes, a.dagBytes)
    assert.equal(u.layers.gift.roots, 1)
    assert.equal(u.layers.cache.used_bytes, 0)
    assert.equal(u.blocks.bytes, a.dagBytes, 'physically stored once')
    assert.equal((await t.store.pins({ layer: 'gift' })).length, 2)
    assert.equal((await t.store.pins({ owner: 'agent-b' }))[0].layer, 'gift')
    assert.deepEqual((await t.store.stat(a.cid)).layers, ['sovereign', 'gift'])

    assert.equal(await t.store.unpin(a.cid, { layer: 'gift', owner: 'agent-a' }), 1)
    assert.equal(await t.store.unpin(a.cid, { layer: 'gift' }), 1)
    assert.equal(await t.store.unpin(a.cid, { layer: 'gift' }), 0)
    assert.equal(await t.store.unpin(a.cid), 1)
    // unpinned content stays, as cache
    const s = await t.store.stat(a.cid)
    assert.deepEqual(s.layers, ['cache'])
    assert.equal((await t.store.usage()).layers.cache.used_bytes, a.dagBytes)
    await t.store.remove(a.cid)
    assert.equal(await t.store.has(a.cid), false)
    await t.store.gc()
    assert.equal((await t.store.usage()).blocks.count, 0)
  })

  it('validates pin arguments', async () => {
    t = tempStore()
    const a = await t.store.add(pseudoRandom(10, 1))
    await assert.rejects(t.store.pin(a.cid, { layer: 'cache' as any }), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(t.store.pin(a.cid, undefined as any), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(t.store.pin(a.cid, { layer: 'gift', owner: 'x'.repeat(300) }), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(t.store.pin('bafkr4ieojr6bxgo37viopkkrqx7k2xxbish2sbfc7xlxr2xv6ln72yu2te', { layer: 'gift' }), code('ERR_BLOB_NOT_FOUND'))
    await assert.rejects(t.store.pin('zzz', { layer: 'gift' }), code('ERR_INVALID_CID'))
  })

  it('rejects bad quota configuration', async () => {
    t = tempStore()
    const { createBlobStore } = await import('../src/index.js')
    assert.throws(() => createBlobStore({ path: t.path + '2', quotas: { gift: -1 } }), code('ERR_INVALID_ARGUMENT'))
    assert.throws(() => createBlobStore({ path: t.path + '3', quotas: { attic: 5 } as any }), code('ERR_INVALID_ARGUMENT'))
  })

  it('an add over its layer quota fails and leaves nothing: no blocks, no pin, no metadata', async () => {
    t = tempStore({ quotas: { gift: 3 * MiB } })
    const ok = await t.store.add(pseudoRandom(2 * MiB, 1), { layer: 'gift', contentType: 'text/plain' })
    await assert.rejects(t.store.add(pseudoRandom(MiB + 100, 2), { layer: 'gift', contentType: 'image/png' }), (err: any) => {
      assert.equal(err.code, 'ERR_QUOTA_EXCEEDED')
      assert.equal(err.name, 'QuotaExceededError')
      assert.equal(err.layer, 'gift')
      assert.equal(err.quotaBytes, 3 * MiB)
      return true
    })
    const u = await t.store.usage()
    assert.equal(u.layers.gift.used_bytes, ok.dagBytes)
    assert.equal(u.blocks.count, ok.blocks)
    assert.equal(u.sessions, 0)
    assert.equal((await t.store.list()).length, 1)
    assert.equal((await t.store.pins()).length, 1)
    // other layers are not affected
    await t.store.add(pseudoRandom(2 * MiB, 3), { layer: 'sovereign' })
  })

  it('a stream that hits the quota midway fails before its end and leaves nothing', async () => {
    t = tempStore({ quotas: { reciprocal: 20 * MiB } })
    let produced = 0
    async function * endless (): AsyncGenerator<Uint8Array> {
      for (let i = 0; ; i++) {
        produced += MiB
        yield pseudoRandom(MiB, i + 1)
        if (produced > 200 * MiB) throw new Error('quota was never enforced')
      }
    }
    await assert.rejects(t.store.add(endless(), { layer: 'reciprocal' }), code('ERR_QUOTA_EXCEEDED'))
    assert.ok(produced <= 20 * MiB + 16 * MiB + MiB, `stopped after ${produced / MiB} MiB`)
    const u = await t.store.usage()
    assert.equal(u.blocks.count, 0)
    assert.equal(u.sessions, 0)
    assert.equal(u.layers.reciprocal.used_bytes, 0)
  })

  it('concurrent adds into one layer: the quota holds and the first to commit wins', async () => {
    t = tempStore({ quotas: { gift: 40 * MiB } })
    const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
    const a = t.store.add(chunked(pseudoRandom(30 * MiB, 1), MiB, tick), { layer: 'gift' })
    const b = t.store.add(chunked(pseudoRandom(30 * MiB, 2), MiB, tick), { layer: 'gift' })
    const results = await Promise.allSettled([a, b])
    assert.equal(results.filter(r => r.status === 'fulfilled').length, 1)
    const failed = results.find(r => r.status === 'rejected') as PromiseRejectedResult
    assert.equal(failed.reason.code, 'ERR_QUOTA_EXCEEDED')
    const u = await t.store.usage()
    assert.ok(u.layers.gift.used_bytes <= 40 * MiB)
    assert.equal(u.sessions, 0)
    await t.store.gc()
    assert.equal((await t.store.usage()).blocks.count, 31)
  })

  it('pinning into a full layer fails and changes nothing', async () => {
    t = tempStore({ quotas: { invested: MiB } })
    const a = await t.store.add(pseudoRandom(2 * MiB, 1))
    await assert.rejects(t.store.pin(a.cid, { layer: 'invested' }), code('ERR_QUOTA_EXCEEDED'))
    assert.equal((await t.store.pins({ layer: 'invested' })).length, 0)
  })

  it('the cache evicts least-recently-used blobs to make room', async () => {
    t = tempStore({ quotas: { cache: 3 * MiB + 1000 } })
    const blobs = []
    for (let i = 0; i < 3; i++) {
      blobs.push(await t.store.add(pseudoRandom(MiB, i + 10), { layer: 'cache' }))
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    // touch the oldest: the second becomes the LRU one
    await collect(t.store.cat(blobs[0].cid, { length: 10 }))
    await new Promise(resolve => setTimeout(resolve, 5))
    const evicted: string[] = []
    t.store.addEventListener('cache:evicted', (e) => { evicted.push(...(e as CustomEvent).detail.cids) })
    const d = await t.store.add(pseudoRandom(MiB, 99), { layer: 'cache' })
    assert.deepEqual(evicted, [blobs[1].cid.toString()])
    assert.equal(await t.store.has(blobs[1].cid), false)
    assert.equal(await t.store.has(blobs[0].cid), true)
    assert.equal(await t.store.has(d.cid), true)
    const gc = await t.store.gc()
    assert.equal(gc.blocksDeleted, 1)
    const u = await t.store.usage()
    assert.ok(u.layers.cache.used_bytes <= 3 * MiB + 1000)
    // pinned content is never evicted and does not count in the cache
    await t.store.pin(blobs[0].cid, { layer: 'sovereign' })
    await t.store.add(pseudoRandom(3 * MiB, 5), { layer: 'cache' })
    assert.equal(await t.store.has(blobs[0].cid), true)
    // a blob larger than the whole cache is refused
    await assert.rejects(t.store.add(pseudoRandom(5 * MiB, 6), { layer: 'cache' }), code('ERR_QUOTA_EXCEEDED'))
  })

  it('a cache add evicts midway through a stream, not only at the end', async () => {
    t = tempStore({ quotas: { cache: 40 * MiB } })
    const old = []
    for (let i = 0; i < 3; i++) old.push(await t.store.add(pseudoRandom(10 * MiB, i + 1), { layer: 'cache' }))
    const big = pseudoRandom(35 * MiB, 50)
    const res = await t.store.add(chunked(big, 256 * 1024), { layer: 'cache' })
    assert.equal(await t.store.has(res.cid), true)
    const u = await t.store.usage()
    assert.ok(u.layers.cache.used_bytes <= 40 * MiB)
    assert.equal(await t.store.has(old[0].cid), false)
    assert.deepEqual(new Uint8Array(await collect(t.store.cat(res.cid))), big)
  })

  it('a blob being read is not evicted', async () => {
    t = tempStore({ quotas: { cache: 2 * MiB + 1000 } })
    const a = await t.store.add(pseudoRandom(MiB, 1), { layer: 'cache' })
    const reader = t.store.cat(a.cid)[Symbol.asyncIterator]()
    await reader.next() // reading has begun
    const b = await t.store.add(pseudoRandom(MiB, 2), { layer: 'cache' })
    // a is the least recently used, but it is being read: b goes instead
    const c = await t.store.add(pseudoRandom(MiB, 3), { layer: 'cache' })
    assert.equal(await t.store.has(a.cid), true)
    assert.equal(await t.store.has(b.cid), false)
    await t.store.gc()
    assert.equal((await reader.next()).done, true)
    await t.store.add(pseudoRandom(MiB, 4), { layer: 'cache' })
    assert.equal(await t.store.has(a.cid), false, 'evicted once the read ended')
    assert.equal(await t.store.has(c.cid), true)
  })

  it('unpinning into a full cache evicts older cache blobs', async () => {
    t = tempStore({ quotas: { cache: MiB + 500 } })
    const c = await t.store.add(pseudoRandom(MiB, 1), { layer: 'cache' })
    const p = await t.store.add(pseudoRandom(MiB, 2), { layer: 'gift' })
    await t.store.unpin(p.cid)
    assert.equal(await t.store.has(c.cid), false)
    assert.equal(await t.store.has(p.cid), true)
  })
})
