import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it, afterEach } from 'node:test'
import Sqlite from 'better-sqlite3'
import { MiB, chunked, collect, pseudoRandom, tempStore } from './helpers.js'
import type { TempStore } from './helpers.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }

describe('garbage collection', () => {
  let t: TempStore
  afterEach(async () => { await t.cleanup() })

  it('collects unreferenced blocks in small batches and keeps everything referenced', async () => {
    t = tempStore({ gcBatchBlocks: 2 })
    const keep = await t.store.add(pseudoRandom(3 * MiB, 1))
    const drop = await t.store.add(pseudoRandom(4 * MiB, 2), { layer: 'cache' })
    await t.store.remove(drop.cid)
    let turns = 0
    const ticker = setInterval(() => { turns++ }, 0)
    const res = await t.store.gc()
    clearInterval(ticker)
    assert.equal(res.blocksDeleted, drop.blocks)
    assert.ok(res.bytesFreed >= 4 * MiB)
    assert.ok(res.bytesReleased >= 4 * MiB, `file shrank by ${res.bytesReleased}`)
    const db = (await t.store.usage()).database
    assert.equal(db.free_bytes, 0)
    assert.ok(db.file_bytes < 3 * MiB + 2 * MiB, `file is ${db.file_bytes} bytes, holding 3 MiB`)
    assert.ok(turns >= 1, 'the event loop ran between batches')
    assert.deepEqual(new Uint8Array(await collect(t.store.cat(keep.cid))), pseudoRandom(3 * MiB, 1))
    assert.equal((await t.store.usage()).blocks.unreferenced, 0)
    assert.equal((await t.store.gc()).blocksDeleted, 0)
  })

  it('never deletes the blocks of an add that is still streaming', async () => {
    t = tempStore({ gcBatchBlocks: 1 })
    const data = pseudoRandom(40 * MiB, 3)
    let gcs = 0
    // GC runs (fully) between pieces of the stream, including between batches
    const adding = t.store.add(chunked(data, 512 * 1024, async () => {
      await t.store.gc()
      gcs++
    }), { layer: 'cache' })
    // garbage for GC to chew on meanwhile
    const other = await t.store.add(pseudoRandom(3 * MiB, 4), { layer: 'cache' })
    await t.store.remove(other.cid)
    const res = await adding
    assert.ok(gcs >= 70)
    assert.deepEqual(new Uint8Array(await collect(t.store.cat(res.cid))), data)
    await t.store.gc()
    const u = await t.store.usage()
    assert.equal(u.blocks.count, res.blocks, 'the removed blob was collected meanwhile, the streaming one kept whole')
  })

  it('a blob removed while it is being read keeps its blocks until the read ends', async () => {
    t = tempStore()
    const data = pseudoRandom(4 * MiB, 9)
    const { cid } = await t.store.add(data)
    const reader = t.store.cat(cid)[Symbol.asyncIterator]()
    const first = await reader.next()
    await t.store.remove(cid)
    assert.equal((await t.store.gc()).blocksDeleted, 0)
    const parts = [first.value as Uint8Array]
    for (let r = await reader.next(); r.done !== true; r = await reader.next()) parts.push(r.value)
    assert.deepEqual(new Uint8Array(Buffer.concat(parts)), data)
    assert.equal((await t.store.gc()).blocksDeleted, 5)
  })

  it('the background loop collects after a removal while adds go on', async () => {
    t = tempStore({ gcIntervalMs: 20 })
    await t.store.start()
    const a = await t.store.add(pseudoRandom(2 * MiB, 5))
    await t.store.remove(a.cid)
    const done = new Promise(resolve => t.store.addEventListener('gc:complete', (e) => { if ((e as CustomEvent).detail.blocksDeleted > 0) resolve(null) }))
    const b = await t.store.add(chunked(pseudoRandom(8 * MiB, 6), 64 * 1024, async () => { await sleep(0) }))
    await done
    assert.equal(await t.store.hasBlock(a.cid), false)
    assert.deepEqual(new Uint8Array(await collect(t.store.cat(b.cid))), pseudoRandom(8 * MiB, 6))
    await t.store.stop()
  })

  it('temporary roots of a dead process are cleared at open and their blocks collected', async () => {
    t = tempStore()
    const kept = await t.store.add(pseudoRandom(MiB + 5, 1))
    await t.store.close()
    // simulate a crash mid-add: a temp root with blocks, written directly
    const db = new Sqlite(t.path)
    const one = db.prepare('SELECT cid FROM blocks LIMIT 1').get() as { cid: Buffer }
    db.prepare("INSERT INTO temp_roots (session, kind, pid, created_at) VALUES ('dead', 'add', 999999, 0)").run()
    const ins = db.prepare("INSERT INTO blocks (cid, size) VALUES (x'01551e20' || randomblob(32), 3)").run()
    db.prepare("INSERT INTO block_data (id, data) VALUES (?, x'010203')").run(ins.lastInsertRowid)
    db.prepare("INSERT INTO temp_blocks (session, block_id) SELECT 'dead', id FROM blocks WHERE size = 3").run()
    db.prepare("INSERT INTO temp_blocks (session, block_id) SELECT 'dead', id FROM blocks WHERE cid = ?").run(one.cid)
    db.close()
    const s = await t.reopen()
    const u = await s.usage()
    assert.equal(u.sessions, 0)
    assert.equal(u.blocks.unreferenced, 1)
    assert.equal((await s.gc()).blocksDeleted, 1)
    assert.deepEqual(new Uint8Array(await collect(s.cat(kept.cid))), pseudoRandom(MiB + 5, 1))
  })
})

describe('scrub', () => {
  let t: TempStore
  afterEach(async () => { await t.cleanup() })

  async function corruptOneLeaf (path: string): Promise<string> {
    const db = new Sqlite(path)
    const row = db.prepare("SELECT id, hex(cid) AS cid FROM blocks WHERE size = ? LIMIT 1").get(MiB) as { id: number, cid: string }
    db.prepare('UPDATE block_data SET data = zeroblob(?) WHERE id = ?').run(MiB, row.id)
    db.close()
    return row.cid
  }

  it('finds a corrupted block, quarantines and reports it; reads then fail instead of returning bad bytes', async () => {
    t = tempStore({ verifyReads: false })
    const data = pseudoRandom(3 * MiB, 1)
    const bad = await t.store.add(data)
    const good = await t.store.add(pseudoRandom(MiB, 2))
    await t.store.close()
    await corruptOneLeaf(t.path)
    const s = await t.reopen()
    const events: string[] = []
    s.addEventListener('block:quarantined', (e) => { events.push((e as CustomEvent).detail.cid) })
    const res = await s.scrub({ bytesPerSecond: 0 })
    assert.equal(res.corrupt, 1)
    assert.equal(res.blocksChecked, 5)
    assert.equal(events.length, 1)
    const status = s.scrubStatus()
    assert.equal(status.corrupt, 1)
    assert.equal(status.quarantined, 1)
    assert.equal(status.passes, 1)
    assert.equal((await s.stat(bad.cid)).quarantinedBlocks, 1)
    assert.equal((await s.usage()).blocks.quarantined, 1)
    await assert.rejects(s.read(bad.cid), code('ERR_BLOCK_QUARANTINED'))
    await assert.rejects(collect(s.cat(bad.cid)), code('ERR_BLOCK_QUARANTINED'))
    await assert.rejects(collect(s.exportCar(bad.cid)), code('ERR_BLOCK_QUARANTINED'))
    assert.equal((await collect(s.cat(good.cid))).byteLength, MiB)
    // a download of the DAG counts the quarantined leaf (only it) as missing
    const download = await s.session()
    const missing = await download.missing(bad.cid)
    assert.equal(missing.length, 1)
    assert.equal(missing[0].code, 0x55)
    await download.release()
    // good bytes from elsewhere heal it
    const healed = await (async () => {
      const src = tempStore()
      try {
        await src.store.add(data)
        const out: Array<[string, Uint8Array]> = []
        for await (const b of src.store.blocksOf(bad.cid)) out.push([b.cid.toString(), await src.store.getBlock(b.cid)])
        return out
      } finally { await src.cleanup() }
    })()
    for (const [cid, bytes] of healed) await s.putBlock(cid, bytes)
    assert.equal(s.scrubStatus().quarantined, 0)
    assert.deepEqual(new Uint8Array(await collect(s.cat(bad.cid))), data)
    assert.equal((await s.scrub({ bytesPerSecond: 0 })).corrupt, 0)
  })

  it('reports through the injected logger, never the console', async () => {
    t = tempStore()
    const { cid } = await t.store.add(pseudoRandom(2 * MiB, 3))
    await t.store.close()
    await corruptOneLeaf(t.path)
    const records: Array<{ level: string, component: string, obj: unknown }> = []
    const logger = {
      forComponent: (component: string) => {
        const at = (level: string) => (obj: object | string) => { records.push({ level, component, obj }) }
        return { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
      }
    }
    const original = { ...console }
    const consoleCalls: unknown[] = []
    for (const k of ['log', 'info', 'warn', 'error', 'debug'] as const) console[k] = (...a: unknown[]) => { consoleCalls.push(a) }
    try {
      const { createBlobStore } = await import('../src/index.js')
      const s = createBlobStore({ path: t.path, gcIntervalMs: 0, scrubIntervalMs: 0 }, { logger })
      t.store = s
      await s.scrub({ bytesPerSecond: 0 })
      await assert.rejects(s.read(cid), code('ERR_BLOCK_QUARANTINED'))
    } finally {
      Object.assign(console, original)
    }
    assert.deepEqual(consoleCalls, [])
    const errors = records.filter(r => r.level === 'error')
    assert.equal(errors.length, 1)
    assert.equal(errors[0].component, 'hearth:blobstore')
    assert.equal((errors[0].obj as { source: string }).source, 'scrub')
  })

  it('verified reads quarantine a corrupted block on the spot', async () => {
    t = tempStore()
    const { cid } = await t.store.add(pseudoRandom(2 * MiB, 1))
    await t.store.close()
    await corruptOneLeaf(t.path)
    const s = await t.reopen()
    await assert.rejects(collect(s.cat(cid)), code('ERR_BLOCK_QUARANTINED'))
    assert.equal((await s.stat(cid)).quarantinedBlocks, 1)
    await assert.rejects(s.read(cid), code('ERR_BLOCK_QUARANTINED'))
  })

  it('keeps to its rate limit and stops promptly', async () => {
    t = tempStore()
    for (let i = 0; i < 4; i++) await t.store.add(pseudoRandom(MiB, i + 1))
    const started = Date.now()
    const res = await t.store.scrub({ bytesPerSecond: 8 * MiB })
    const ms = Date.now() - started
    assert.equal(res.bytesChecked, 4 * MiB)
    assert.ok(ms >= 400, `4 MiB at 8 MiB/s took ${ms} ms`)
    // background: start, then stop mid-pass
    const s = await t.reopen({ scrubIntervalMs: 1000, scrubBytesPerSecond: MiB })
    await s.start()
    await sleep(50)
    assert.equal(s.scrubStatus().running, true)
    const stopAt = Date.now()
    await s.stop()
    assert.ok(Date.now() - stopAt < 2000)
    assert.equal(s.scrubStatus().running, false)
  })
})

describe('scrub across restarts', () => {
  it('the background scrub resumes where it stopped', async () => {
    const t = tempStore()
    try {
      for (let i = 0; i < 8; i++) await t.store.add(pseudoRandom(MiB, i + 1))
      let s = await t.reopen({ scrubIntervalMs: 60_000, scrubBytesPerSecond: 4 * MiB })
      await s.start()
      await sleep(700)
      await s.stop()
      await s.close()
      const db = new Sqlite(t.path, { readonly: true })
      const cursor = Number((db.prepare("SELECT value FROM meta WHERE key = 'scrub_cursor'").get() as { value: string }).value)
      db.close()
      assert.ok(cursor > 0 && cursor < 8, `cursor ${cursor}`)
      s = await t.reopen({ scrubIntervalMs: 60_000, scrubBytesPerSecond: 1024 * MiB })
      const pass = new Promise<{ blocksChecked: number }>(resolve => s.addEventListener('scrub:pass', (e) => { resolve((e as CustomEvent).detail) }))
      await s.start()
      const { blocksChecked } = await pass
      await s.stop()
      assert.equal(blocksChecked, 8 - cursor)
    } finally {
      await t.cleanup()
    }
  })
})
