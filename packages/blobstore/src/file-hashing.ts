import { availableParallelism } from 'node:os'
import { open } from 'node:fs/promises'
import { createHash } from 'blake3'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { BLAKE3_CODE, CHUNK_SIZE, MAX_CHILDREN_PER_NODE } from './constants.js'
import { buildDag, DagLayout } from './dag-builder.js'
import { AbortError, InvalidArgumentError, SourceChangedError } from './errors.js'
import { fileSource } from './file-source.js'
import { blake3 } from './hashers.js'
import { leafHashAddon } from './leaf-hash.js'
import { readDigests } from './leaf-reader.js'
import type { DagBuildResult } from './dag-builder.js'

/** Files smaller than this are hashed like an add's leaves: splitting them into runs would cost more than it saves */
const THREADED_MIN_BYTES = 4 * CHUNK_SIZE

/** Leaves per run */
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
  /**
   * Runs asked of libuv's thread pool at once (default: two per core, at
   * most 8, so that a core never waits for this thread to hand it the next
   * run; with one per core a 1 GiB file took 0.18-0.19 s here, with two
   * 0.13-0.14); 0 hashes on the calling thread, in slices between which
   * other work runs. Without the leaf-hash addon the calling thread hashes
   * anyway.
   */
  threads?: number
}

interface Digests { digests: Uint8Array, sizes: number[] }

/**
 * The CID a file gets when it is added (BLAKE3, 1 MiB leaves, the balanced
 * UnixFS layout), computed without storing anything: `ipfs add --only-hash`.
 * Runs of 16 leaves are read and hashed on libuv's thread pool, several at
 * once (the leaf-hash addon: 64 KiB reads, each piece hashed while it is in
 * cache, as `b3sum --no-mmap` reads); their bytes never reach JavaScript.
 * The file is hashed at the size it had when it was opened; one that
 * shrinks meanwhile fails with `SourceChangedError`.
 */
export async function hashFile (path: string, options: HashFileOptions = {}): Promise<DagBuildResult> {
  const { signal, onProgress } = options
  const threads = options.threads ?? Math.min(8, 2 * availableParallelism())
  if (!Number.isSafeInteger(threads) || threads < 0) throw new InvalidArgumentError('threads must be a non-negative integer')
  const addon = threads > 0 ? leafHashAddon() : null
  const file = await open(path, 'r')
  const running = new Set<Promise<unknown>>()
  let stopped = false
  try {
    const size = (await file.stat()).size
    if (size < THREADED_MIN_BYTES) {
      return await buildDag(fileSource(path, { signal, hashWhileReading: addon != null }), { put: () => {} }, { signal, onProgress })
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
    const lane = async (hash: (job: typeof jobs[number]) => Digests | Promise<Digests>): Promise<void> => {
      while (!stopped && taken < jobs.length) {
        const job = jobs[taken++]
        try { job.resolve(await hash(job)) } catch (err) { job.reject(err) }
      }
    }
    const lanes = addon != null
      ? Array.from({ length: Math.min(threads, jobs.length) }, async () => await lane(async job => await addon.hashLeaves(file.fd, job.first * CHUNK_SIZE, CHUNK_SIZE, job.count)))
      // without the addon this thread hashes, a run at a time between turns of the event loop
      : [lane(async job => {
          await new Promise(resolve => setImmediate(resolve))
          return readDigests(createHash, file.fd, job.first * CHUNK_SIZE, CHUNK_SIZE, job.count)
        })]
    for (const l of lanes) { running.add(l); void l.finally(() => running.delete(l)) }

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
    // the pool's reads must be done with the descriptor before it is closed (and its number reused)
    while (running.size > 0) await Promise.allSettled([...running])
    await file.close()
  }
}
