import assert from 'node:assert/strict'
import { closeSync, fdatasyncSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { FLUSH_AHEAD_BYTES } from '../src/constants.js'
import { blake3 } from '../src/index.js'
import { pageDropper } from '../src/page-cache.js'
import { MiB, pseudoRandom, tempStore } from './helpers.js'

interface PageCache {
  dropPages: (fd: number, offset: number, length: number) => boolean
  cachedBytes: (fd: number, offset: number, length: number) => number
  setMallocThresholds: (mmapBytes: number, trimBytes: number) => boolean
}
const addon = createRequire(import.meta.url)('@hearth/page-cache') as PageCache

/** Bytes of the file at `path` in the page cache, and its size */
function residency (path: string): { cached: number, size: number } {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    return { cached: addon.cachedBytes(fd, 0, size), size }
  } finally {
    closeSync(fd)
  }
}

async function until (check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return check()
}

describe('page cache', () => {
  let dir: string
  /** whether this file system drops clean pages when asked (tmpfs, for one, keeps them) */
  let drops = false

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-page-cache-'))
    const probe = join(dir, 'probe')
    writeFileSync(probe, Buffer.alloc(MiB, 1))
    const fd = openSync(probe, 'r')
    fdatasyncSync(fd)
    drops = addon.dropPages(fd, 0, 0) && addon.cachedBytes(fd, 0, MiB) === 0
    closeSync(fd)
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('the addon is built, and it is what the store loads', () => {
    assert.equal(typeof pageDropper(), 'function')
    assert.equal(pageDropper(), addon.dropPages)
    const path = join(dir, 'f')
    writeFileSync(path, Buffer.alloc(4 * MiB, 2))
    const fd = openSync(path, 'r')
    try {
      assert.equal(addon.cachedBytes(fd, 0, 4 * MiB), 4 * MiB, 'a file just written is cached')
      assert.equal(addon.cachedBytes(fd, 0, 0), 0)
      assert.equal(addon.cachedBytes(fd, 1, 10), -1, 'an offset off a page boundary cannot be told')
      for (const bad of [[-1, 0, 0], [fd, -1, 0], [fd, 0, -5], ['x', 0, 0], [fd]] as unknown[][]) {
        assert.throws(() => (addon.dropPages as (...a: unknown[]) => boolean)(...bad), (err: any) => err instanceof TypeError && (err as { code?: string }).code === 'ERR_INVALID_ARG_TYPE')
      }
      assert.equal(addon.dropPages(987654, 0, 0), false, 'a closed descriptor is refused, not a crash')
      fdatasyncSync(fd)
      assert.equal(addon.dropPages(fd, 0, 2 * MiB), true)
      assert.equal(addon.cachedBytes(fd, 2 * MiB, 2 * MiB), 2 * MiB, 'what lies past the range stays cached')
      assert.equal(addon.dropPages(fd, 0, 0), true)
      if (drops) assert.equal(addon.cachedBytes(fd, 0, 4 * MiB), 0, 'length 0 drops to the end')
    } finally {
      closeSync(fd)
    }
  })

  it('sets glibc malloc\'s thresholds where the C library is glibc, and refuses bad values', () => {
    const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime != null
    // the values a store sets (see database.ts): setting them again changes nothing
    assert.equal(addon.setMallocThresholds(4 * MiB, 32 * MiB), glibc)
    for (const bad of [[0, MiB], [MiB, -1], [2 ** 31, MiB], ['x', MiB], [MiB]] as unknown[][]) {
      assert.throws(() => (addon.setMallocThresholds as (...a: unknown[]) => boolean)(...bad), (err: any) => err instanceof TypeError && (err as { code?: string }).code === 'ERR_INVALID_ARG_TYPE', JSON.stringify(bad))
    }
  })

  it('what a download writes leaves the page cache once it is on disk; what an add writes stays', async (t) => {
    if (!drops) {
      t.skip('this file system keeps clean pages when asked to drop them')
      return
    }
    const n = FLUSH_AHEAD_BYTES / MiB + 16
    const download = tempStore()
    const add = tempStore()
    try {
      const s = await download.store.session()
      for (let i = 0; i < n; i++) {
        const bytes = pseudoRandom(MiB, i + 1)
        await s.putBlock(CID.createV1(0x55, await blake3.digest(bytes)), bytes)
      }
      // the flush ahead started at FLUSH_AHEAD_BYTES; once its sync is done, what it covered is dropped
      const dropped = await until(() => { const r = residency(download.path); return r.cached < r.size / 2 }, 10_000)
      const d = residency(download.path)
      assert.ok(dropped, `the download's file is mostly out of the page cache (${d.cached} of ${d.size} bytes cached)`)
      // (SQLite's own cache still holds the last pages written)
      assert.ok(d.size >= FLUSH_AHEAD_BYTES, `the blocks reached the file (${d.size} bytes)`)
      const counted = (await download.store.usage()).database.page_cache_dropped_bytes
      assert.ok(counted > 0 && counted <= d.size, `the store counts what it dropped (the file as it was when the flush began) (${counted} bytes)`)
      await s.release()

      await add.store.add(pseudoRandom(n * MiB, 7))
      assert.equal((await add.store.usage()).database.page_cache_dropped_bytes, 0)
      await add.store.close() // waits for the flush ahead, and what it would drop
      const a = residency(add.path)
      assert.ok(a.cached >= a.size * 0.9, `the add's file stays cached (${a.cached} of ${a.size} bytes)`)
    } finally {
      await download.cleanup()
      await add.cleanup()
    }
  })
})
