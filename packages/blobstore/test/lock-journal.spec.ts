import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, beforeEach, afterEach } from 'node:test'
import { fileURLToPath } from 'node:url'
import Sqlite from 'better-sqlite3'
import { buildDag, createBlobStore } from '../src/index.js'
import type { CID } from '../src/index.js'
import { MiB, collect, pseudoRandom, tempStore } from './helpers.js'
import type { TempStore } from './helpers.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }
const HOLDER = fileURLToPath(new URL('./fixtures/hold-child.js', import.meta.url))
const WAL_WRITER = fileURLToPath(new URL('./fixtures/wal-writer-child.js', import.meta.url))

/** Starts a process that holds the store open; resolves with it and the CID it added */
async function holder (path: string): Promise<{ child: ChildProcess, cid: string }> {
  const child = spawn(process.execPath, ['--expose-gc', HOLDER, path], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const cid = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /READY (\S+)\n/.exec(out)
      if (m != null) resolve(m[1])
    })
    child.once('exit', () => { reject(new Error(`holder exited early: ${err}`)) })
  })
  return { child, cid }
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode != null || child.signalCode != null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

describe('one process owns a store', () => {
  let t: TempStore
  beforeEach(() => { t = tempStore() })
  afterEach(async () => { await t.cleanup() })

  it('another process gets ERR_STORE_LOCKED while one holds it, and takes it over once that one is killed', async () => {
    await t.store.close()
    const { child, cid } = await holder(t.path)
    try {
      assert.throws(() => createBlobStore({ path: t.path, busyTimeoutMs: 50 }), code('ERR_STORE_LOCKED'))
    } finally {
      await kill(child)
    }
    // the kernel released its lock with the process: no stale lock to clear by hand
    const store = await t.reopen({ busyTimeoutMs: 50 })
    assert.equal(await store.has(cid), true)
    assert.equal((await collect(store.cat(cid))).byteLength, 3000)
  })

  it('a process cannot open a store this process holds', async () => {
    await t.store.add(pseudoRandom(10, 1))
    const child = spawn(process.execPath, ['--expose-gc', HOLDER, t.path], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const exitCode = await new Promise<number | null>(resolve => child.once('exit', resolve))
    assert.notEqual(exitCode, 0)
    assert.match(err, /ERR_STORE_LOCKED/)
  })

  it('a store closed normally leaves nothing that blocks the next open', async () => {
    const { cid } = await t.store.add(pseudoRandom(5000, 2))
    await t.store.close()
    const store = await t.reopen({ busyTimeoutMs: 0 })
    assert.equal(await store.has(cid), true)
  })
})

/** Bytes this process has handed to write(2) and friends so far (page cache included) */
async function bytesWritten (): Promise<number> {
  return Number(/wchar:\s+(\d+)/.exec(await readFile('/proc/self/io', 'utf8'))?.[1])
}

describe('the rollback journal', () => {
  it('an add writes its leaves once, and leaves no WAL and an empty journal', { skip: !existsSync('/proc/self/io') }, async () => {
    const t = tempStore()
    try {
      await t.store.add(pseudoRandom(1000, 1))
      const data = pseudoRandom(24 * MiB, 3)
      const before = await bytesWritten()
      const { cid } = await t.store.add(data)
      const written = (await bytesWritten()) - before
      // 24 MiB of leaves, the b-tree pages beside them and a small journal;
      // a WAL would have written every page twice
      assert.ok(written < 1.2 * data.byteLength, `an add of 24 MiB wrote ${(written / MiB).toFixed(1)} MiB`)
      assert.ok(written >= data.byteLength)
      assert.equal(existsSync(`${t.path}-wal`), false)
      assert.equal(existsSync(`${t.path}-journal`) ? statSync(`${t.path}-journal`).size : 0, 0)
      const store = await t.reopen()
      assert.deepEqual(new Uint8Array(await collect(store.cat(cid))), data)
    } finally {
      await t.cleanup()
    }
  })

  it('writes wait in one transaction that commits once they pause', async () => {
    const t = tempStore()
    try {
      const { cid } = await t.store.add(pseudoRandom(3 * MiB, 4))
      await t.store.remove(cid)
      // GC's deletes need no durability of their own: the open transaction
      // holds them until writes have paused for a second
      assert.ok((await t.store.gc()).blocksDeleted > 0)
      const journal = `${t.path}-journal`
      assert.ok(statSync(journal).size > 0, 'GC wrote into the open transaction')
      const deadline = Date.now() + 10_000
      while (statSync(journal).size > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(statSync(journal).size, 0, 'committed after the pause')
    } finally {
      await t.cleanup()
    }
  })

  it('a session whose uncommitted writes SQLite rolled back fails with ERR_WRITE_LOST, and the store goes on', async () => {
    const t = tempStore()
    try {
      const data = pseudoRandom(2 * MiB + 10, 9)
      const dag = await buildDag(data, { put: () => {} })
      const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
      await buildDag(data, { put: b => { blocks.push({ cid: b.cid, bytes: new Uint8Array(b.bytes) }) } })
      const s = await t.store.session()
      await s.putBlock(blocks[0].cid, blocks[0].bytes)
      // what SQLite does on some I/O errors (a full disk): the open
      // transaction is rolled back under the operation that hit the error
      const db = (t.store as any).ctx.db
      assert.throws(() => db.transaction(() => { db.db.exec('ROLLBACK'); throw new Error('disk full') }), /disk full/)
      for (const b of blocks.slice(1)) await assert.rejects(s.putBlock(b.cid, b.bytes), code('ERR_WRITE_LOST'))
      await assert.rejects(s.commit(dag.cid), code('ERR_WRITE_LOST'))
      await s.release()
      assert.equal(await t.store.hasBlock(blocks[0].cid), false, 'its block went with the transaction')
      // a new session, and an add, work as before
      const again = await t.store.session()
      for (const b of blocks) await again.putBlock(b.cid, b.bytes)
      assert.equal((await again.commit(dag.cid)).cid.toString(), dag.cid.toString())
      assert.deepEqual(new Uint8Array(await collect(t.store.cat(dag.cid))), data)
      assert.equal((await t.store.usage()).sessions, 0)
    } finally {
      await t.cleanup()
    }
  })

  it('a store left in WAL mode by an earlier version, with its last writes only in the WAL, opens with every blob', async () => {
    const t = tempStore()
    const wal = join(t.dir, 'old.db')
    try {
      const small = pseudoRandom(5000, 5)
      const large = pseudoRandom(3 * MiB + 17, 6)
      const a = await t.store.add(small, { contentType: 'text/plain' })
      const b = await t.store.add(large, { layer: 'gift' })
      await t.store.close()
      const child = spawn(process.execPath, [WAL_WRITER, t.path, wal], { stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d: Buffer) => { err += d.toString() })
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('READY')) resolve() })
        child.once('exit', () => { reject(new Error(`writer exited early: ${err}`)) })
      })
      await kill(child)
      assert.ok(statSync(`${wal}-wal`).size > 3 * MiB, 'the rows are in the WAL, not yet in the database')

      const store = createBlobStore({ path: wal, gcIntervalMs: 0, scrubIntervalMs: 0 })
      try {
        assert.equal(existsSync(`${wal}-wal`), false, 'the WAL was checkpointed and removed')
        assert.deepEqual(new Uint8Array(await collect(store.cat(a.cid))), small)
        assert.deepEqual(new Uint8Array(await collect(store.cat(b.cid))), large)
        assert.equal((await store.stat(a.cid)).contentType, 'text/plain')
        assert.deepEqual((await store.stat(b.cid)).layers, ['gift'])
        assert.equal((await store.scrub({ bytesPerSecond: 0 })).corrupt, 0)
        // and it keeps working: an add, GC, a reopen
        const c = await store.add(pseudoRandom(2 * MiB, 7))
        await store.remove(a.cid)
        await store.gc()
        assert.equal((await store.usage()).blocks.unreferenced, 0)
        assert.equal(await store.has(c.cid), true)
      } finally {
        await store.close()
      }
      const db = new Sqlite(wal, { readonly: true })
      try {
        assert.notEqual(db.pragma('journal_mode', { simple: true }), 'wal')
      } finally {
        db.close()
      }
    } finally {
      await t.cleanup()
    }
  })
})

describe('adds copy what they hash', () => {
  let t: TempStore
  beforeEach(() => { t = tempStore() })
  afterEach(async () => { await t.cleanup() })

  for (const size of [MiB, 300 * 1024]) {
    it(`a source that reuses one ${size / 1024} KiB buffer stores exactly what it yielded`, async () => {
      const data = pseudoRandom(5 * MiB + 123, 11)
      const buf = new Uint8Array(size)
      async function * reusing (): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < data.byteLength; i += size) {
          const n = Math.min(size, data.byteLength - i)
          buf.set(data.subarray(i, i + n))
          yield buf.subarray(0, n)
          buf.fill(0xee)
        }
      }
      const reused = await t.store.add(reusing())
      const expected = await t.store.add(data)
      assert.equal(reused.cid.toString(), expected.cid.toString())
      assert.deepEqual(new Uint8Array(await collect(t.store.cat(reused.cid))), data)
      assert.equal((await t.store.scrub()).corrupt, 0)
    })
  }
})

describe('light reads', () => {
  let t: TempStore
  beforeEach(() => { t = tempStore() })
  afterEach(async () => { await t.cleanup() })

  it('head() is stat() without pins and layers', async () => {
    const { cid } = await t.store.add(pseudoRandom(2 * MiB + 5, 4), { contentType: 'text/plain', layer: 'gift' })
    const head = await t.store.head(cid.toString())
    const stat = await t.store.stat(cid)
    assert.deepEqual(head, { cid: stat.cid, size: stat.size, blocks: stat.blocks, dagBytes: stat.dagBytes, contentType: 'text/plain', quarantinedBlocks: 0, createdAt: stat.createdAt })
    await assert.rejects(t.store.head('bafkr4ieojr6bxgo37viopkkrqx7k2xxbish2sbfc7xlxr2xv6ln72yu2te'), code('ERR_BLOB_NOT_FOUND'))
  })

  it('read() gives the head at once and the full stat when asked', async () => {
    const data = pseudoRandom(4096, 6)
    const { cid } = await t.store.add(data, { layer: 'invested', owner: 'agent-1' })
    const r = await t.store.read(cid, { offset: 100, length: 50 })
    assert.equal(r.head.size, 4096)
    assert.deepEqual(r.stat.layers, ['invested'])
    assert.equal(r.stat.pins[0].owner, 'agent-1')
    assert.deepEqual(new Uint8Array(await collect(r.body)), data.subarray(100, 150))
  })
})
