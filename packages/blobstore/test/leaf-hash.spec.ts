import assert from 'node:assert/strict'
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, before, after } from 'node:test'
import { hash } from 'blake3'
import { leafHashAddon } from '../src/leaf-hash.js'
import { MiB, pseudoRandom } from './helpers.js'
import type { LeafHashAddon } from '../src/leaf-hash.js'

const addon = createRequire(import.meta.url)('@hearth/leaf-hash') as LeafHashAddon
const same = (a: Uint8Array, b: Uint8Array): void => { assert.deepEqual(new Uint8Array(a), new Uint8Array(b)) }

describe('@hearth/leaf-hash', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'hearth-leaf-hash-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('is what the store loads', () => {
    assert.equal(leafHashAddon(), addon)
  })

  it('hashes as the blake3 package does, across its SIMD block sizes and the 64 KiB pieces', () => {
    for (const size of [0, 1, 63, 64, 1023, 1024, 1025, 4096, 16 * 1024 + 3, 64 * 1024, 64 * 1024 + 1, MiB + 7]) {
      const data = pseudoRandom(size, size + 3)
      same(addon.hashBytes(data), hash(data))
    }
  })

  it('hashLeaves gives each leaf\'s digest and size, ending at a short leaf or the end of the file', async () => {
    const leaf = 100 * 1024 + 1 // not a multiple of the 64 KiB piece
    const data = pseudoRandom(3 * leaf + 17, 9)
    const file = join(dir, 'leaves.bin')
    writeFileSync(file, data)
    const fd = openSync(file, 'r')
    try {
      const all = await addon.hashLeaves(fd, 0, leaf, 8)
      assert.deepEqual(all.sizes, [leaf, leaf, leaf, 17])
      assert.equal(all.digests.byteLength, 4 * 32)
      for (let i = 0; i < 4; i++) same(all.digests.subarray(i * 32, i * 32 + 32), hash(data.subarray(i * leaf, Math.min(data.byteLength, (i + 1) * leaf))))
      // from a position inside the file, and exactly at its end (one empty leaf: the file ended there)
      const mid = await addon.hashLeaves(fd, leaf + 5, leaf, 1)
      same(mid.digests, hash(data.subarray(leaf + 5, 2 * leaf + 5)))
      const end = await addon.hashLeaves(fd, data.byteLength, leaf, 2)
      assert.deepEqual(end.sizes, [0])
    } finally {
      closeSync(fd)
    }
  })

  it('readHashed fills the buffer and hashes what it read', async () => {
    const data = pseudoRandom(MiB + 300, 4)
    const file = join(dir, 'read.bin')
    writeFileSync(file, data)
    const fd = openSync(file, 'r')
    try {
      const target = new Uint8Array(MiB)
      const first = await addon.readHashed(fd, target, 0)
      assert.equal(first.bytesRead, MiB)
      same(target, data.subarray(0, MiB))
      same(first.digest, hash(data.subarray(0, MiB)))
      const tail = await addon.readHashed(fd, target, MiB)
      assert.equal(tail.bytesRead, 300)
      same(target.subarray(0, 300), data.subarray(MiB))
      same(tail.digest, hash(data.subarray(MiB)))
      // a view into a larger buffer is written only where it lies
      const big = new Uint8Array(3000).fill(0xaa)
      const r = await addon.readHashed(fd, big.subarray(1000, 2000), 5)
      assert.equal(r.bytesRead, 1000)
      same(big.subarray(1000, 2000), data.subarray(5, 1005))
      assert.ok(big.subarray(0, 1000).every(b => b === 0xaa) && big.subarray(2000).every(b => b === 0xaa))
    } finally {
      closeSync(fd)
    }
  })

  it('refuses bad arguments with a TypeError and rejects a failed read with its system error', async () => {
    const bad: Array<() => unknown> = [
      () => addon.hashLeaves(-1, 0, MiB, 1),
      () => addon.hashLeaves(0, -1, MiB, 1),
      () => addon.hashLeaves(0, 0.5, MiB, 1),
      () => addon.hashLeaves(0, 0, 0, 1),
      () => addon.hashLeaves(0, 0, 64 * MiB + 1, 1),
      () => addon.hashLeaves(0, 0, MiB, 0),
      () => addon.hashLeaves(0, 0, MiB, 4097),
      () => (addon.hashLeaves as any)(0, '0', MiB, 1),
      () => (addon.readHashed as any)(0, new Uint16Array(4), 0),
      () => (addon.readHashed as any)(0, Buffer.alloc(4).buffer, 0),
      () => addon.readHashed(0, new Uint8Array(4), Number.MAX_SAFE_INTEGER + 2),
      () => (addon.hashBytes as any)('text')
    ]
    for (const call of bad) assert.throws(call, (err: any) => err instanceof TypeError && (err as any).code === 'ERR_INVALID_ARG_TYPE')
    const fd = openSync(join(dir, 'closed.bin'), 'w')
    closeSync(fd)
    await assert.rejects(addon.hashLeaves(fd, 0, MiB, 1), (err: any) => err.code === 'EBADF' && err.errno < 0)
    await assert.rejects(addon.readHashed(fd, new Uint8Array(16), 0), (err: any) => err.code === 'EBADF')
    // a directory cannot be read
    const dirFd = openSync(dir, 'r')
    try {
      await assert.rejects(addon.hashLeaves(dirFd, 0, MiB, 1), (err: any) => err.code === 'EISDIR')
    } finally {
      closeSync(dirFd)
    }
  })
})
