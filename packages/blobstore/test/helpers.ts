import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBlobStore } from '../src/index.js'
import type { BlobStore, BlobStoreInit } from '../src/index.js'

export interface TempStore {
  store: BlobStore
  dir: string
  path: string
  reopen: (init?: Partial<BlobStoreInit>) => Promise<BlobStore>
  cleanup: () => Promise<void>
}

/** A store in a fresh temp folder; background loops off unless asked */
export function tempStore (init: Partial<BlobStoreInit> = {}): TempStore {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-blobstore-'))
  const path = join(dir, 'blobs.db')
  const base = { path, gcIntervalMs: 0, scrubIntervalMs: 0, ...init }
  const t: TempStore = {
    store: createBlobStore(base),
    dir,
    path,
    reopen: async (more = {}) => {
      await t.store.close()
      t.store = createBlobStore({ ...base, ...more })
      return t.store
    },
    cleanup: async () => {
      await t.store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return t
}

export async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of source) parts.push(p)
  return Buffer.concat(parts)
}

/** Deterministic pseudo-random bytes (xorshift), cheap for large sizes */
export function pseudoRandom (size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
    if (i + 1 < size) out[i + 1] = (x >>> 8) & 0xff
    if (i + 2 < size) out[i + 2] = (x >>> 16) & 0xff
    if (i + 3 < size) out[i + 3] = (x >>> 24) & 0xff
  }
  return out
}

/** Yields `data` in pieces of `piece` bytes, awaiting `between` after each */
export async function * chunked (data: Uint8Array, piece: number, between?: () => Promise<void>): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += piece) {
    yield data.subarray(i, Math.min(i + piece, data.byteLength))
    if (between != null) await between()
  }
}

export const MiB = 1024 * 1024
