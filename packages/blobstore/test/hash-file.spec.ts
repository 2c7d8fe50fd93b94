import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, before, after } from 'node:test'
import { buildDag, fileSource, hashFile } from '../src/index.js'
import { MiB, pseudoRandom } from './helpers.js'
import type { LeafHashAddon } from '../src/leaf-hash.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }
const addon = createRequire(import.meta.url)('@hearth/leaf-hash') as LeafHashAddon

/** Counts the addon's hashLeaves calls while `fn` runs (the store calls it through the same module object) */
async function countingLeafRuns<T> (fn: () => Promise<T>): Promise<{ result: T, runs: number }> {
  const original = addon.hashLeaves
  let runs = 0
  addon.hashLeaves = async (...args) => { runs++; return await original(...args) }
  try {
    return { result: await fn(), runs }
  } finally {
    addon.hashLeaves = original
  }
}

describe('hashFile', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'hearth-hashfile-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  // below 4 MiB the leaves are hashed as an add reads them; 37 MiB + 5 is three runs of 16 leaves and a short leaf
  for (const size of [0, 1, MiB, 4 * MiB, 4 * MiB + 1, 37 * MiB + 5]) {
    it(`gives a ${size}-byte file the CID an add gives it, on the thread pool and on this thread`, async () => {
      const file = join(dir, `f-${size}.bin`)
      writeFileSync(file, pseudoRandom(size, size + 11))
      // the reference: the blake3 package on this thread, no addon involved
      const expected = await buildDag(fileSource(file, { hashWhileReading: false }), { put: () => {} })
      for (const threads of [undefined, 1, 3, 0]) {
        const progress: number[] = []
        const got = await hashFile(file, { threads, onProgress: (n) => progress.push(n) })
        assert.equal(got.cid.toString(), expected.cid.toString())
        assert.equal(got.size, size)
        assert.equal(got.blocks, expected.blocks)
        // rising, up to the whole file
        assert.ok(progress.every((n, i) => i === 0 || n > progress[i - 1]))
        assert.equal(progress.at(-1) ?? 0, size)
      }
    })
  }

  it('hashes its runs with the addon on the thread pool, and none with threads: 0', async () => {
    const file = join(dir, 'threads.bin')
    writeFileSync(file, pseudoRandom(64 * MiB, 5))
    const pooled = await countingLeafRuns(async () => await hashFile(file))
    assert.equal(pooled.runs, 4, 'four runs of 16 leaves went to the addon')
    const alone = await countingLeafRuns(async () => await hashFile(file, { threads: 0 }))
    assert.equal(alone.runs, 0)
    assert.equal(alone.result.cid.toString(), pooled.result.cid.toString())
    await assert.rejects(hashFile(file, { threads: -1 }), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(hashFile(file, { threads: 1.5 }), code('ERR_INVALID_ARGUMENT'))
  })

  it('fails with ERR_SOURCE_CHANGED when the file shrinks while it is hashed, and stops on abort', async () => {
    const file = join(dir, 'shrinks.bin')
    // 128 MiB is eight runs of 16 MiB. With at most two runs read at once, the
    // runs past 96 MiB cannot have started when the first one is reported (the
    // default, up to eight at once, could have read them all already, as it did
    // once in CI), so the truncation to 100 MiB is always seen
    for (const threads of [1, 2, 0]) {
      writeFileSync(file, pseudoRandom(128 * MiB, 6))
      await assert.rejects(hashFile(file, { threads, onProgress: () => { truncateSync(file, 100 * MiB) } }), code('ERR_SOURCE_CHANGED'))
    }
    for (const threads of [undefined, 0]) {
      writeFileSync(file, pseudoRandom(128 * MiB, 6))
      const abort = new AbortController()
      await assert.rejects(hashFile(file, { threads, signal: abort.signal, onProgress: () => { abort.abort() } }), code('ERR_ABORTED'))
    }
    await assert.rejects(hashFile(join(dir, 'missing.bin')), code('ENOENT'))
  })
})
