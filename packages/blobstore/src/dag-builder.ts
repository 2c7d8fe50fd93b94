import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { fixedSizeChunks } from './chunker.js'
import { BLAKE3_CODE, CHUNK_SIZE, MAX_CHILDREN_PER_NODE } from './constants.js'
import { InvalidArgumentError } from './errors.js'
import { blake3 } from './hashers.js'
import { takePrehashed } from './leaf-hash.js'
import type { ByteSource } from './chunker.js'
import type { MultihashHasher } from 'multiformats/hashes/interface'

export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** Where the builder writes blocks; it awaits each put, so a sink can apply backpressure */
export interface BlockSink {
  put: (block: Block) => void | Promise<void>
}

export interface DagBuilderOptions {
  /** Multihash for leaves and nodes (default BLAKE3) */
  hasher?: MultihashHasher
  /** Leaf size in bytes (default 1 MiB) */
  chunkSize?: number
  /** Links per dag-pb node (default 1024) */
  maxChildrenPerNode?: number
  signal?: AbortSignal
  /** Called after each leaf with the bytes consumed so far */
  onProgress?: (bytes: number) => void
  /**
   * The sink copies each leaf it keeps before `put` returns (or its promise
   * settles), so the builder may reuse one buffer for leaves it assembles.
   * Leaves are otherwise fresh buffers or views of the source's own chunks.
   */
  transientLeaves?: boolean
}

export interface DagBuildResult {
  cid: CID
  /** File size in bytes */
  size: number
  /** Blocks written (leaves + nodes, duplicates included) */
  blocks: number
}

/** A finished subtree as its parent sees it */
interface Child {
  cid: CID
  /** Tsize: encoded bytes of the whole subtree */
  tsize: number
  /** File bytes under this subtree */
  fileSize: number
}

function digest (hasher: MultihashHasher, bytes: Uint8Array): CID['multihash'] {
  const d = hasher.digest(bytes)
  if (d instanceof Promise) throw new InvalidArgumentError('the DAG builder needs a synchronous hasher')
  return d
}

/**
 * The balanced layout of `ipfs-unixfs-importer`, built as leaves arrive.
 *
 * The importer batches each level into groups of `maxChildrenPerNode` and
 * reduces each group (even a group of one) to a parent, level after level.
 * Here the same tree is built incrementally: `levels[k]` holds the pending
 * children at height k, and a full group is reduced as soon as it fills, so
 * memory is one group per level.
 */
export class DagLayout {
  private readonly levels: Child[][] = [[]]
  private leaves = 0
  private first?: Child
  /** blocks written: leaves (counted by the caller through `addLeaf`) and nodes */
  blocks = 0

  constructor (private readonly hasher: MultihashHasher, private readonly max: number, private readonly sink: BlockSink) {
    if (!Number.isSafeInteger(max) || max < 2) throw new InvalidArgumentError('maxChildrenPerNode must be at least 2')
  }

  /** Adds the next leaf; a promise only when a group filled and its node went to the sink */
  addLeaf (cid: CID, size: number): void | Promise<void> {
    this.blocks++
    this.leaves++
    const leaf = { cid, tsize: size, fileSize: size }
    if (this.leaves === 1) {
      // held back: a single leaf is the whole file (reduceSingleLeafToSelf)
      this.first = leaf
      return
    }
    if (this.first != null) {
      const first = this.first
      this.first = undefined
      const p = this.push(0, first)
      if (p != null) return p.then(async () => await this.push(0, leaf))
    }
    return this.push(0, leaf)
  }

  /** The root, once every leaf was added */
  async finish (): Promise<CID> {
    if (this.first != null) return this.first.cid
    if (this.leaves === 0) throw new InvalidArgumentError('a DAG needs at least one leaf')
    // Close the partial groups from the bottom up: a level is reduced when
    // anything exists above it (it was one of several groups) or when it holds
    // more than one child; the single child left at the top is the root.
    for (let k = 0; ; k++) {
      const pending = this.levels[k] ?? []
      const above = this.levels.slice(k + 1).some(l => l.length > 0)
      if (pending.length === 1 && !above) return pending[0].cid
      if (pending.length > 0) {
        this.levels[k] = []
        await this.push(k + 1, await this.reduce(pending))
      }
    }
  }

  private async reduce (children: Child[]): Promise<Child> {
    const file = new UnixFS({ type: 'file' })
    for (const c of children) file.addBlockSize(BigInt(c.fileSize))
    const node = dagPb.prepare({
      Data: file.marshal(),
      Links: children.map(c => ({ Hash: c.cid, Name: '', Tsize: c.tsize }))
    })
    const bytes = dagPb.encode(node)
    const cid = CID.createV1(dagPb.code, digest(this.hasher, bytes))
    await this.sink.put({ cid, bytes })
    this.blocks++
    return {
      cid,
      tsize: bytes.byteLength + children.reduce((acc, c) => acc + c.tsize, 0),
      fileSize: children.reduce((acc, c) => acc + c.fileSize, 0)
    }
  }

  private push (level: number, child: Child): void | Promise<void> {
    if (this.levels[level] == null) this.levels[level] = []
    this.levels[level].push(child)
    if (this.levels[level].length < this.max) return
    const group = this.levels[level]
    this.levels[level] = []
    return this.reduce(group).then(async (parent) => { await this.push(level + 1, parent) })
  }
}

/**
 * Streams a file into a UnixFS DAG, the balanced layout of
 * `ipfs-unixfs-importer` (CIDv1, raw leaves, fixed-size chunks,
 * `reduceSingleLeafToSelf`) with a pluggable hasher: with SHA-256 it yields
 * the importer's CIDs exactly, with BLAKE3 what `--hash blake3` gives.
 *
 * (`hashFile` computes the same CID of a file on several threads, storing nothing.)
 */
export async function buildDag (source: ByteSource, sink: BlockSink, options: DagBuilderOptions = {}): Promise<DagBuildResult> {
  const hasher = options.hasher ?? blake3
  const chunkSize = options.chunkSize ?? CHUNK_SIZE
  const layout = new DagLayout(hasher, options.maxChildrenPerNode ?? MAX_CHILDREN_PER_NODE, sink)
  let size = 0
  for await (const bytes of fixedSizeChunks(source, chunkSize, { signal: options.signal, transient: options.transientLeaves })) {
    // a leaf that `fileSource` hashed as it read it (off this thread) is not hashed again
    const known = hasher.code === BLAKE3_CODE ? takePrehashed(bytes) : undefined
    const cid = CID.createV1(raw.code, known !== undefined ? createDigest(BLAKE3_CODE, known) : digest(hasher, bytes))
    // a synchronous sink costs no extra turn of the microtask queue per leaf
    const stored = sink.put({ cid, bytes })
    if (stored != null) await stored
    size += bytes.byteLength
    options.onProgress?.(size)
    const placed = layout.addLeaf(cid, bytes.byteLength)
    if (placed != null) await placed
  }
  return { cid: await layout.finish(), size, blocks: layout.blocks }
}
