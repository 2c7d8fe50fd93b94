import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { fixedSizeChunks } from './chunker.js'
import { CHUNK_SIZE, MAX_CHILDREN_PER_NODE } from './constants.js'
import { InvalidArgumentError } from './errors.js'
import { blake3 } from './hashers.js'
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
 * Streams a file into a UnixFS DAG, the balanced layout of
 * `ipfs-unixfs-importer` (CIDv1, raw leaves, fixed-size chunks,
 * `reduceSingleLeafToSelf`) with a pluggable hasher: with SHA-256 it yields
 * the importer's CIDs exactly, with BLAKE3 what `--hash blake3` gives.
 *
 * The importer batches each level into groups of `maxChildrenPerNode` and
 * reduces each group (even a group of one) to a parent, level after level.
 * Here the same tree is built incrementally: `levels[k]` holds the pending
 * children at height k, and a full group is reduced as soon as it fills, so
 * memory is one chunk plus one group per level.
 */
export async function buildDag (source: ByteSource, sink: BlockSink, options: DagBuilderOptions = {}): Promise<DagBuildResult> {
  const hasher = options.hasher ?? blake3
  const chunkSize = options.chunkSize ?? CHUNK_SIZE
  const max = options.maxChildrenPerNode ?? MAX_CHILDREN_PER_NODE
  if (!Number.isSafeInteger(max) || max < 2) throw new InvalidArgumentError('maxChildrenPerNode must be at least 2')

  const levels: Child[][] = [[]]
  let blocks = 0
  let size = 0

  const reduce = async (children: Child[]): Promise<Child> => {
    const file = new UnixFS({ type: 'file' })
    for (const c of children) file.addBlockSize(BigInt(c.fileSize))
    const node = dagPb.prepare({
      Data: file.marshal(),
      Links: children.map(c => ({ Hash: c.cid, Name: '', Tsize: c.tsize }))
    })
    const bytes = dagPb.encode(node)
    const cid = CID.createV1(dagPb.code, digest(hasher, bytes))
    await sink.put({ cid, bytes })
    blocks++
    return {
      cid,
      tsize: bytes.byteLength + children.reduce((acc, c) => acc + c.tsize, 0),
      fileSize: children.reduce((acc, c) => acc + c.fileSize, 0)
    }
  }

  const push = async (level: number, child: Child): Promise<void> => {
    if (levels[level] == null) levels[level] = []
    levels[level].push(child)
    if (levels[level].length === max) {
      const group = levels[level]
      levels[level] = []
      await push(level + 1, await reduce(group))
    }
  }

  let leaves = 0
  let first: Child | undefined
  for await (const chunk of fixedSizeChunks(source, chunkSize, { signal: options.signal, transient: options.transientLeaves })) {
    const cid = CID.createV1(raw.code, digest(hasher, chunk))
    // a synchronous sink costs no extra turn of the microtask queue per leaf
    const pending = sink.put({ cid, bytes: chunk })
    if (pending != null) await pending
    blocks++
    leaves++
    size += chunk.byteLength
    options.onProgress?.(size)
    const leaf = { cid, tsize: chunk.byteLength, fileSize: chunk.byteLength }
    if (leaves === 1) {
      // held back: a single leaf is the whole file (reduceSingleLeafToSelf)
      first = leaf
      continue
    }
    if (first != null) {
      await push(0, first)
      first = undefined
    }
    await push(0, leaf)
  }
  if (first != null) return { cid: first.cid, size, blocks }

  // Close the partial groups from the bottom up: a level is reduced when
  // anything exists above it (it was one of several groups) or when it holds
  // more than one child; the single child left at the top is the root.
  for (let k = 0; ; k++) {
    const pending = levels[k] ?? []
    const above = levels.slice(k + 1).some(l => l.length > 0)
    if (pending.length === 1 && !above) return { cid: pending[0].cid, size, blocks }
    if (pending.length > 0) {
      levels[k] = []
      await push(k + 1, await reduce(pending))
    }
  }
}
