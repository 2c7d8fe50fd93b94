import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { describe, it, beforeEach, afterEach } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createBlobStore } from '../src/index.js'
import { MiB, collect, pseudoRandom, tempStore } from './helpers.js'
import type { TempStore } from './helpers.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }
const HOLDER = fileURLToPath(new URL('./fixtures/hold-child.js', import.meta.url))

/** Starts a process that holds the store open; resolves with it and the CID it added */
async function holder (path: string): Promise<{ child: ChildProcess, cid: string }> {
  const child = spawn(process.execPath, [HOLDER, path], { stdio: ['ignore', 'pipe', 'pipe'] })
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
    const child = spawn(process.execPath, [HOLDER, t.path], { stdio: ['ignore', 'pipe', 'pipe'] })
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

describe('WAL checkpointer', () => {
  it('keeps the WAL bounded during a long add, and empties it at close', async () => {
    const t = tempStore({ walCheckpointBytes: 4 * MiB, walMaxBytes: 16 * MiB })
    try {
      const wal = `${t.path}-wal`
      let peak = 0
      const piece = pseudoRandom(MiB, 3)
      const total = 160
      async function * source (): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < total; i++) {
          // a different leaf each time, so nothing deduplicates
          const leaf = new Uint8Array(piece)
          leaf[0] = i & 0xff
          leaf[1] = i >> 8
          yield leaf
          if (existsSync(wal)) peak = Math.max(peak, statSync(wal).size)
        }
      }
      const res = await t.store.add(source())
      assert.equal(res.size, total * MiB)
      // bound: walMaxBytes plus one 16 MiB batch, plus the b-tree pages beside the leaves
      assert.ok(peak < 40 * MiB, `WAL peaked at ${(peak / MiB).toFixed(1)} MiB`)
      await t.store.close()
      assert.ok(!existsSync(wal) || statSync(wal).size === 0)
      const store = await t.reopen()
      assert.equal((await store.stat(res.cid)).size, total * MiB)
    } finally {
      await t.cleanup()
    }
  })

  it('copies an add into the database in the background once the add has ended', async () => {
    const t = tempStore({ walCheckpointBytes: 4 * MiB, walMaxBytes: 256 * MiB })
    try {
      const data = pseudoRandom(24 * MiB, 8)
      await t.store.add(data)
      // the add wrote its pages once, to the WAL; the checkpointer copies them after it
      const deadline = Date.now() + 20_000
      while (statSync(t.path).size < 24 * MiB && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
      assert.ok(statSync(t.path).size >= 24 * MiB, `database file holds ${statSync(t.path).size} bytes`)
    } finally {
      await t.cleanup()
    }
  })

  it('a store that checkpointed in the background reads back every byte after a reopen', async () => {
    const t = tempStore({ walCheckpointBytes: MiB, walMaxBytes: 4 * MiB })
    try {
      const data = pseudoRandom(24 * MiB + 777, 5)
      const { cid } = await t.store.add(data)
      const store = await t.reopen()
      assert.deepEqual(new Uint8Array(await collect(store.cat(cid))), data)
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
