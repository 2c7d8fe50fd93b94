import { open } from 'node:fs/promises'
import { createHash } from 'blake3'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { BLAKE3_CODE, CHUNK_SIZE, MAX_CHILDREN_PER_NODE } from './constants.js'
import { buildDag, DagLayout } from './dag-builder.js'
import { AbortError, SourceChangedError } from './errors.js'
import { fileSource } from './file-source.js'
import { blake3 } from './hashers.js'
import { sharedHashPool } from './hash-pool.js'
import { readDigests } from './leaf-reader.js'
import type { DagBuildResult } from './dag-builder.js'
import type { HashPool } from './hash-pool.js'

/** Files smaller than this are hashed on the calling thread alone: starting a thread would cost more than it saves */
const THREADED_MIN_BYTES = 4 * CHUNK_SIZE

/** Leaves per `digests` request of `hashFile` */
const LEAVES_PER_JOB = 16

function leafCid (digest: Uint8Array): CID {
  return CID.createV1(raw.code, createDigest(BLAKE3_CODE, digest))
}

function checkAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortError()
}

export interface HashFileOptions {
  signal?: AbortSignal
  /** Called as leaves are hashed, with the bytes hashed so far */
  onProgress?: (bytes: number) => void
  /** Hash threads beside the calling one (default the process's shared pool; null: the calling thread alone) */
  hashPool?: HashPool | null
}

interface Digests { digests: Uint8Array, sizes: number[] }

/**
 * The CID a file gets when it is added (BLAKE3, 1 MiB leaves, the balanced
 * UnixFS layout), computed without storing anything: `ipfs add --only-hash`.
 * The hash threads and this thread read and hash runs of 16 leaves in
 * parallel (this one in slices of a few milliseconds, between which other
 * work runs); the threads' leaf bytes never reach this one. The file is hashed at the size it had when it
 * was opened; one that shrinks meanwhile fails with `SourceChangedError`.
 */
export async function hashFile (path: string, options: HashFileOptions = {}): Promise<DagBuildResult> {
  const { signal, onProgress } = options
  const pool = options.hashPool === undefined ? sharedHashPool() : options.hashPool
  const file = await open(path, 'r')
  const running = new Set<Promise<unknown>>()
  let stopped = false
  try {
    const size = (await file.stat()).size
    if (size < THREADED_MIN_BYTES) {
      return await buildDag(fileSource(path, { signal }), { put: () => {} }, { signal, onProgress })
    }
    const leafCount = Math.ceil(size / CHUNK_SIZE)
    const jobs = Array.from({ length: Math.ceil(leafCount / LEAVES_PER_JOB) }, (_, k) => {
      let resolve!: (d: Digests) => void
      let reject!: (err: unknown) => void
      const promise = new Promise<Digests>((res, rej) => { resolve = res; reject = rej })
      // (awaited in order below; a rejection is not left unhandled meanwhile)
      promise.catch(() => {})
      return { promise, resolve, reject, first: k * LEAVES_PER_JOB, count: Math.min(LEAVES_PER_JOB, leafCount - k * LEAVES_PER_JOB) }
    })
    let taken = 0
    const track = (p: Promise<unknown>): void => { running.add(p); void p.finally(() => running.delete(p)) }
    if (pool != null) {
      const pump = (): void => {
        if (stopped || taken >= jobs.length) return
        const job = jobs[taken++]
        track(pool.run({ fd: file.fd, position: job.first * CHUNK_SIZE, leafSize: CHUNK_SIZE, count: job.count })
          .then(r => { job.resolve(r); pump() }, job.reject))
      }
      track(pool.ready().then(ok => {
        if (ok) for (let i = 0; i < pool.threads * 2; i++) pump()
      }))
    }
    // this thread takes its share of runs too, in slices of a few milliseconds
    track((async () => {
      while (!stopped && taken < jobs.length) {
        await new Promise(resolve => setImmediate(resolve))
        if (stopped || taken >= jobs.length) break
        const job = jobs[taken++]
        try { job.resolve(readDigests(createHash, file.fd, job.first * CHUNK_SIZE, CHUNK_SIZE, job.count)) } catch (err) { job.reject(err) }
      }
    })())

    const layout = new DagLayout(blake3, MAX_CHILDREN_PER_NODE, { put: () => {} })
    let done = 0
    for (const job of jobs) {
      const { digests, sizes } = await job.promise
      checkAborted(signal)
      for (let i = 0; i < job.count; i++) {
        const expected = Math.min(CHUNK_SIZE, size - (job.first + i) * CHUNK_SIZE)
        if (sizes[i] !== expected) throw new SourceChangedError(`${path} shrank while it was read`)
        const placed = layout.addLeaf(leafCid(digests.subarray(i * 32, i * 32 + 32)), expected)
        if (placed != null) await placed
        done += expected
      }
      onProgress?.(done)
    }
    return { cid: await layout.finish(), size, blocks: layout.blocks }
  } finally {
    stopped = true
    // the threads must be done with the descriptor before it is closed (and its number reused)
    while (running.size > 0) await Promise.allSettled([...running])
    await file.close()
  }
}
