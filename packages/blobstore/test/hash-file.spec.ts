import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, before, after } from 'node:test'
import { HashPool, buildDag, fileSource, hashFile } from '../src/index.js'
import { MiB, pseudoRandom } from './helpers.js'

const code = (c: string) => (err: any) => { assert.equal(err?.code, c); return true }

describe('hashFile', () => {
  let dir: string
  const pool = new HashPool(2)
  before(() => { dir = mkdtempSync(join(tmpdir(), 'hearth-hashfile-')) })
  after(async () => {
    await pool.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  // below 4 MiB the calling thread hashes alone; 37 MiB + 5 is three runs of 16 leaves and a short leaf
  for (const size of [0, 1, MiB, 4 * MiB, 4 * MiB + 1, 37 * MiB + 5]) {
    it(`gives a ${size}-byte file the CID an add gives it, with threads and without`, async () => {
      const file = join(dir, `f-${size}.bin`)
      writeFileSync(file, pseudoRandom(size, size + 11))
      const expected = await buildDag(fileSource(file), { put: () => {} })
      for (const hashPool of [pool, null, undefined]) {
        const progress: number[] = []
        const got = await hashFile(file, { hashPool, onProgress: (n) => progress.push(n) })
        assert.equal(got.cid.toString(), expected.cid.toString())
        assert.equal(got.size, size)
        assert.equal(got.blocks, expected.blocks)
        // rising, up to the whole file
        assert.ok(progress.every((n, i) => i === 0 || n > progress[i - 1]))
        assert.equal(progress.at(-1) ?? 0, size)
      }
    })
  }

  it('really hashes on the pool threads, and a pool can be stopped and used again', async () => {
    const file = join(dir, 'threads.bin')
    writeFileSync(file, pseudoRandom(64 * MiB, 5))
    const expected = await buildDag(fileSource(file), { put: () => {} })
    assert.equal(await pool.ready(), true)
    const before = pool.completed
    assert.equal((await hashFile(file, { hashPool: pool })).cid.toString(), expected.cid.toString())
    assert.ok(pool.completed > before, 'no run went to a pool thread')
    await pool.stop()
    assert.equal((await hashFile(file, { hashPool: pool })).cid.toString(), expected.cid.toString())
  })

  it('fails with ERR_SOURCE_CHANGED when the file shrinks while it is hashed, and stops on abort', async () => {
    const file = join(dir, 'shrinks.bin')
    writeFileSync(file, pseudoRandom(128 * MiB, 6))
    await assert.rejects(hashFile(file, { hashPool: pool, onProgress: () => { truncateSync(file, 40 * MiB) } }), code('ERR_SOURCE_CHANGED'))
    writeFileSync(file, pseudoRandom(128 * MiB, 6))
    const abort = new AbortController()
    await assert.rejects(hashFile(file, { hashPool: pool, signal: abort.signal, onProgress: () => { abort.abort() } }), code('ERR_ABORTED'))
    await assert.rejects(hashFile(join(dir, 'missing.bin')), code('ENOENT'))
  })
})
