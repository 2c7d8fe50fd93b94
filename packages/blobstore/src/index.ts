/**
 * @packageDocumentation
 *
 * `@hearth/blobstore`: content-addressed blocks and blobs in one SQLite file.
 *
 * - A blob of at most 1 MiB is one raw block whose CID is raw + BLAKE3 (its
 *   digest is the file's `b3sum`); a larger blob is a balanced UnixFS DAG with
 *   1 MiB raw leaves and at most 1024 links per node, hashed with BLAKE3.
 * - Adds and reads stream: a blob is never held whole in memory.
 * - Every block is verified when it arrives (add, `putBlock`, sessions) and by
 *   a background scrub that quarantines blocks that fail.
 * - Blobs are pinned in a storage layer (`sovereign`, `reciprocal`,
 *   `invested`, `gift`); unpinned blobs form the LRU `cache`. Each layer has a
 *   hard quota. GC runs in small batches and never deletes a block that an
 *   in-flight add or download (a session, i.e. a temporary root) still needs.
 *
 * @example
 * ```ts
 * import { createBlobStore } from '@hearth/blobstore'
 * const store = createBlobStore({ path: '/var/lib/hearth/blobs.db', quotas: { gift: 10 * 2 ** 30 } })
 * await store.start()
 * const { cid, size } = await store.add(fs.createReadStream(file), { layer: 'sovereign', contentType: 'image/png' })
 * for await (const chunk of store.cat(cid, { offset: 0, length: 100 })) process.stdout.write(chunk)
 * await store.stop()
 * await store.close()
 * ```
 */
import { SqliteBlobStore } from './sqlite-blob-store.js'
import type { ByteSource } from './chunker.js'
import type { ComponentLogger } from './logger.js'
import type { Layer, PinLayer } from './constants.js'
import type { CID } from 'multiformats/cid'

export * from './errors.js'
export { parseCid, cidToString } from './cids.js'
export { blake3, sha256, verifyBlock, matchesCid, checkIncomingBlock } from './hashers.js'
export { checkContentType } from './validate.js'
export { buildDag } from './dag-builder.js'
export { fileSource } from './file-source.js'
export type { FileSourceOptions } from './file-source.js'
export { hashFile } from './file-hashing.js'
export type { HashFileOptions } from './file-hashing.js'
export type { Block, BlockSink, DagBuilderOptions, DagBuildResult } from './dag-builder.js'
export { decodeFileNode, estimateDagBytes, fileSizeOf, readRange, walkDag } from './dag-reader.js'
export type { FileNode } from './dag-reader.js'
export type { GetBlock } from './dag-reader.js'
export { MemoryBlockStore } from './memory-block-store.js'
export { SqliteBlockStore } from './sqlite-block-store.js'
export { CHUNK_SIZE, MAX_CHILDREN_PER_NODE, MAX_BLOCK_SIZE } from './constants.js'
export type { Logger, ComponentLogger } from './logger.js'
export type { ByteSource } from './chunker.js'
export type { CID }

export { PIN_LAYERS, LAYERS } from './constants.js'
export type { PinLayer, Layer } from './constants.js'

/** A CID object or its string form (any multibase); strings are validated */
export type CidInput = CID | string

/**
 * The block-level contract, with two implementations (`SqliteBlockStore`,
 * `MemoryBlockStore`) checked by the compliance suite in
 * `@hearth/blobstore/test-suite`. `put` verifies the bytes against the CID.
 */
export interface BlockStore {
  /** Stores a block after checking that `bytes` hash to `cid`; idempotent */
  put: (cid: CID, bytes: Uint8Array) => Promise<void>
  /** The block's bytes, or BlockNotFoundError */
  get: (cid: CID) => Promise<Uint8Array>
  has: (cid: CID) => Promise<boolean>
  /** Removes a block; deleting a missing block is not an error */
  delete: (cid: CID) => Promise<void>
}

export interface BlobStoreInit {
  /** Path of the SQLite file; its folder is created if missing */
  path: string
  /** Hard quota per layer in bytes; a missing layer is unlimited */
  quotas?: Partial<Record<Layer, number>>
  /** Layer of an add that names none (default `sovereign`) */
  defaultLayer?: Layer
  /** Re-hash every block as it is read, quarantining a bad one (default true) */
  verifyReads?: boolean
  /** Background GC period while started, ms (default 60 s); 0 disables the loop */
  gcIntervalMs?: number
  /** Blocks deleted per GC transaction (default 32) */
  gcBatchBlocks?: number
  /** Scrub rate, bytes per second (default 16 MiB/s) */
  scrubBytesPerSecond?: number
  /** Pause between scrub passes, ms (default 1 h); 0 disables the background scrub */
  scrubIntervalMs?: number
  /** How long to wait at open for a database held by another process (default 2 s) */
  busyTimeoutMs?: number
  /**
   * Writes that need no durability of their own (the blocks of an add or a
   * download before its commit, GC, the scrub's marks) wait in one open
   * transaction; it is committed at the next durable operation, once writes
   * pause for a second, or once this many bytes were written in it (default
   * 4 GiB). A crash loses what was not committed, nothing acknowledged.
   */
  commitBytes?: number
  /**
   * Bytes free on the file system that holds the store (undefined when it
   * cannot tell). With it, the cache keeps `cacheMinFreeBytes` of them free,
   * evicting least-recently-used blobs (at GC, and when it grows) when the
   * disk fills with other data.
   */
  freeSpace?: () => number | undefined
  /** Free space the cache leaves on the file system (default 0) */
  cacheMinFreeBytes?: number
  /** Called when a write fails for lack of disk space, before the DiskFullError reaches the caller */
  onDiskFull?: () => void
}

export interface BlobStoreComponents {
  logger?: ComponentLogger
}

export interface AddOptions {
  /** Layer to pin into (default `init.defaultLayer`, `sovereign`); `cache` leaves it unpinned */
  layer?: Layer
  /** Agent id that owns the pin (optional) */
  owner?: string
  /** Stored with the blob and returned by `stat` (e.g. `image/png`) */
  contentType?: string
  signal?: AbortSignal
  /** Bytes consumed so far, after each 1 MiB leaf */
  onProgress?: (bytes: number) => void
}

export interface AddResult {
  cid: CID
  /** File size in bytes */
  size: number
  /** Distinct blocks in the DAG */
  blocks: number
  /** Bytes of the DAG's distinct blocks (what quotas charge) */
  dagBytes: number
}

export interface Pin {
  cid: CID
  layer: PinLayer
  owner?: string
  createdAt: number
  /** File size of the pinned blob */
  size: number
  dagBytes: number
}

export interface PinOptions {
  layer: PinLayer
  owner?: string
}

export interface UnpinOptions {
  /** Only pins in this layer (default: all layers) */
  layer?: PinLayer
  /** Only pins of this owner; `null` selects pins without owner (default: any owner) */
  owner?: string | null
}

export interface PinFilter {
  cid?: CidInput
  layer?: PinLayer
  owner?: string
}

export interface BlobStat {
  cid: CID
  size: number
  blocks: number
  dagBytes: number
  contentType?: string
  /** Layers holding the blob: its pin layers, or `['cache']` */
  layers: Layer[]
  pins: Pin[]
  /** Blocks of the blob that failed verification; reads fail while > 0 */
  quarantinedBlocks: number
  createdAt: number
  lastAccess: number
}

/**
 * A blob's own row, without its pins and layers: one indexed lookup, for
 * hot paths such as an HTTP GET (headers need only the size and type)
 */
export interface BlobHead {
  cid: CID
  size: number
  blocks: number
  dagBytes: number
  contentType?: string
  /** Blocks of the blob that failed verification; reads fail while > 0 */
  quarantinedBlocks: number
  createdAt: number
}

export interface CatOptions {
  /** First byte (default 0) */
  offset?: number
  /** Bytes to read (default: to the end; clamped to the end like HTTP ranges) */
  length?: number
  signal?: AbortSignal
}

/** What `read` returns: everything an HTTP handler needs before it sends headers */
export interface ReadResult {
  head: BlobHead
  /** The full stat, pins included: computed when first accessed, so a read that does not look pays nothing for it */
  readonly stat: BlobStat
  offset: number
  length: number
  body: AsyncIterable<Uint8Array>
}

export interface BlobInfo {
  cid: CID
  size: number
  contentType?: string
  createdAt: number
}

export interface ListOptions {
  /** Paging cursor: the `cid` of the last entry of the previous page */
  after?: CidInput
  /** Default 100, at most 1000 */
  limit?: number
}

export interface LayerUsage {
  used_bytes: number
  /** null: unlimited */
  quota_bytes: number | null
  roots: number
}

export interface StorageUsage {
  layers: Record<Layer, LayerUsage>
  blocks: {
    count: number
    bytes: number
    /** Waiting for GC */
    unreferenced: number
    quarantined: number
  }
  /** In-flight adds and downloads (temporary roots) */
  sessions: number
  /**
   * The SQLite file: its size, how much of it is free pages awaiting GC's
   * release, and how many bytes of downloaded blocks were dropped from the
   * OS page cache once on disk, since the store opened (0 where the
   * `@hearth/page-cache` addon is not available)
   */
  database: { file_bytes: number, free_bytes: number, page_cache_dropped_bytes: number }
}

export interface GcOptions {
  signal?: AbortSignal
  batchBlocks?: number
}

export interface GcResult {
  blocksDeleted: number
  /** Bytes of the blocks deleted */
  bytesFreed: number
  /** Bytes the database file shrank by (free pages handed back to the file system) */
  bytesReleased: number
  rootsEvicted: number
  durationMs: number
}

export interface ScrubOptions {
  /** Override the rate for this pass */
  bytesPerSecond?: number
  signal?: AbortSignal
}

export interface ScrubPassResult {
  blocksChecked: number
  bytesChecked: number
  corrupt: number
}

export interface ScrubStatus {
  running: boolean
  passes: number
  blocksChecked: number
  bytesChecked: number
  /** Blocks found corrupt by the scrub since open */
  corrupt: number
  /** Blocks currently quarantined in the store */
  quarantined: number
  bytesPerSecond: number
  lastPassStartedAt?: number
  lastPassCompletedAt?: number
}

export interface CommitOptions {
  layer?: Layer
  owner?: string
  contentType?: string
}

export interface SessionOptions {
  /**
   * The layer the download will be committed into. Its new bytes then count
   * toward that layer while it runs (with concurrent adds and downloads into
   * the layer), and a block that takes it past the layer's quota is refused
   * with QuotaExceededError (for the cache: once least-recently-used blobs
   * could not be evicted to make room). Without a layer only the commit checks.
   */
  layer?: Layer
}

/**
 * A temporary root: blocks put through a session are safe from GC until the
 * session commits them as a blob or is released. Use one per download.
 */
export interface Session {
  readonly id: string
  /** Bytes of blocks this session stored that the store did not hold already */
  readonly newBytes: number
  /** Verifies and stores a block under this session; with a layer, checks its quota every 16 MiB stored */
  putBlock: (cid: CidInput, bytes: Uint8Array) => Promise<void>
  /**
   * Checks, before downloading, that `bytes` more would fit the session's
   * layer now (evicting from the cache to make room); throws
   * QuotaExceededError otherwise. Nothing is reserved.
   */
  expect: (bytes: number) => void
  /** Blocks of `root` not held yet, as far as the held blocks reveal the DAG */
  missing: (root: CidInput) => Promise<CID[]>
  /**
   * Registers `root` as a blob (its DAG must be complete) and pins it, and
   * releases the session, all in one transaction.
   */
  commit: (root: CidInput, options?: CommitOptions) => Promise<AddResult>
  /** Drops the temporary root; blocks nobody else references are deleted */
  release: () => Promise<void>
}

export interface BlobStoreEvents {
  /** A block failed verification (scrub or read) and was quarantined */
  'block:quarantined': CustomEvent<{ cid: string, source: 'scrub' | 'read' }>
  /** Cache blobs were evicted to respect the cache quota */
  'cache:evicted': CustomEvent<{ cids: string[], bytes: number }>
  'gc:complete': CustomEvent<GcResult>
  'scrub:pass': CustomEvent<ScrubPassResult>
}

export interface BlobStore extends EventTarget {
  /** Imports a stream as a blob, pinned in `options.layer` */
  add: (source: ByteSource, options?: AddOptions) => Promise<AddResult>
  /** Validates the CID and range, then returns the body stream */
  read: (cid: CidInput, options?: CatOptions) => Promise<ReadResult>
  /** `read(...).body` as one async iterable; errors surface when iterated */
  cat: (cid: CidInput, options?: CatOptions) => AsyncIterable<Uint8Array>
  stat: (cid: CidInput) => Promise<BlobStat>
  /** `stat` without pins and layers: one lookup (`ERR_BLOB_NOT_FOUND`) */
  head: (cid: CidInput) => Promise<BlobHead>
  /** true when the blob is registered (all its blocks are held) */
  has: (cid: CidInput) => Promise<boolean>
  list: (options?: ListOptions) => Promise<BlobInfo[]>
  /** Removes every pin of the blob and the blob itself; its blocks go at the next GC */
  remove: (cid: CidInput) => Promise<void>

  hasBlock: (cid: CidInput) => Promise<boolean>
  getBlock: (cid: CidInput) => Promise<Uint8Array>
  /**
   * Verifies and stores one block. Outside a session the block is kept only
   * if a blob references it (this is how a quarantined block is healed with
   * good bytes from a peer); downloads should use `session()`.
   */
  putBlock: (cid: CidInput, bytes: Uint8Array) => Promise<void>
  /** The blocks of `root` this store holds (all of them when it is a blob) */
  blocksOf: (root: CidInput) => AsyncIterable<{ cid: CID, size: number }>
  /** A CARv1 stream of the blob's DAG (root first, depth-first) */
  exportCar: (root: CidInput) => AsyncIterable<Uint8Array>
  session: (options?: SessionOptions) => Promise<Session>

  pin: (cid: CidInput, options: PinOptions) => Promise<Pin>
  /** Removes matching pins; returns how many. A blob left with no pin joins the cache */
  unpin: (cid: CidInput, options?: UnpinOptions) => Promise<number>
  pins: (filter?: PinFilter) => Promise<Pin[]>

  usage: () => Promise<StorageUsage>
  gc: (options?: GcOptions) => Promise<GcResult>
  scrub: (options?: ScrubOptions) => Promise<ScrubPassResult>
  scrubStatus: () => ScrubStatus

  /** Starts the background GC and scrub */
  start: () => Promise<void>
  /** Stops them, waiting for a batch in progress */
  stop: () => Promise<void>
  /** Stops, flushes and closes the database */
  close: () => Promise<void>
}

/**
 * Opens (or creates) the store. Opening clears the temporary roots of a
 * crashed process; their blocks are reclaimed by the next GC.
 */
export function createBlobStore (init: BlobStoreInit, components: BlobStoreComponents = {}): BlobStore {
  return new SqliteBlobStore(init, components)
}
