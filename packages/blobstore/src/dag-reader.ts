import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { DAG_PB_CODE, RAW_CODE } from './constants.js'
import { InvalidDagError, UnsupportedCodecError } from './errors.js'
import type { CID } from 'multiformats/cid'

/** Fetches a block's bytes or throws (BlockNotFoundError, BlockQuarantinedError, ...) */
export type GetBlock = (cid: CID) => Uint8Array | Promise<Uint8Array>

const MAX_DEPTH = 32

/** A UnixFS file node: its inline data, its links and the file bytes under each */
export interface FileNode {
  data?: Uint8Array
  links: CID[]
  blockSizes: number[]
  fileSize: number
}

export function decodeFileNode (bytes: Uint8Array): FileNode {
  let node: dagPb.PBNode
  let file: UnixFS
  try {
    node = dagPb.decode(bytes)
    if (node.Data == null) throw new Error('no Data')
    file = UnixFS.unmarshal(node.Data)
  } catch (err: any) {
    throw new InvalidDagError(`not a UnixFS node: ${String(err?.message ?? err)}`)
  }
  if (file.type !== 'file' && file.type !== 'raw') throw new InvalidDagError(`UnixFS type ${file.type} is not a file`)
  if (node.Links.length !== file.blockSizes.length) throw new InvalidDagError('links and blocksizes disagree')
  return {
    data: file.data,
    links: node.Links.map(l => l.Hash),
    blockSizes: file.blockSizes.map(n => Number(n)),
    fileSize: Number(file.fileSize())
  }
}

/**
 * An upper bound of what a balanced DAG of `size` file bytes stores (what
 * quotas charge): its 1 MiB leaves plus, per leaf, more than the link and
 * block size its parent node spends on it, and a little for the root.
 */
export function estimateDagBytes (size: number): number {
  return size + Math.ceil(size / (1024 * 1024)) * 64 + 4096
}

/** Size in file bytes of the DAG under `cid` given its root block */
export function fileSizeOf (cid: CID, bytes: Uint8Array): number {
  if (cid.code === RAW_CODE) return bytes.byteLength
  if (cid.code === DAG_PB_CODE) return decodeFileNode(bytes).fileSize
  throw new UnsupportedCodecError()
}

/**
 * Yields the bytes `[offset, offset + length)` of a UnixFS file (or raw block).
 * It walks the DAG depth-first, using each node's blocksizes to skip subtrees
 * outside the range, so only needed leaves are read, and it reads the next
 * block only when the consumer asks: memory stays at one block per level.
 * (`ipfs-unixfs-exporter` prefetches siblings into an unbounded queue, which
 * for a slow HTTP client would buffer the whole blob.)
 */
export async function * readRange (get: GetBlock, root: CID, offset: number, length: number): AsyncGenerator<Uint8Array> {
  if (length <= 0) return
  const end = offset + length
  let produced = 0

  async function * visit (cid: CID, start: number, expected: number | undefined, depth: number): AsyncGenerator<Uint8Array> {
    if (depth > MAX_DEPTH) throw new InvalidDagError('DAG too deep')
    const bytes = await get(cid)
    if (cid.code === RAW_CODE) {
      if (expected !== undefined && bytes.byteLength !== expected) throw new InvalidDagError('leaf size disagrees with its parent')
      const from = Math.max(offset - start, 0)
      const to = Math.min(end - start, bytes.byteLength)
      if (to > from) {
        produced += to - from
        yield bytes.subarray(from, to)
      }
      return
    }
    if (cid.code !== DAG_PB_CODE) throw new UnsupportedCodecError()
    const node = decodeFileNode(bytes)
    if (expected !== undefined && node.fileSize !== expected) throw new InvalidDagError('node size disagrees with its parent')
    let pos = start
    if (node.data != null && node.data.byteLength > 0) {
      const from = Math.max(offset - pos, 0)
      const to = Math.min(end - pos, node.data.byteLength)
      if (to > from) {
        produced += to - from
        yield node.data.subarray(from, to)
      }
      pos += node.data.byteLength
    }
    for (let i = 0; i < node.links.length && pos < end; i++) {
      const childSize = node.blockSizes[i]
      if (pos + childSize > offset) yield * visit(node.links[i], pos, childSize, depth + 1)
      pos += childSize
    }
  }

  yield * visit(root, 0, undefined, 0)
  if (produced !== length) throw new InvalidDagError(`DAG yielded ${produced} bytes where ${length} were expected`)
}

export interface WalkedBlock {
  cid: CID
  /** undefined when the block is missing (only with `skipMissing`) */
  bytes?: Uint8Array
}

/**
 * Depth-first, parents before children (the order a CAR of the DAG uses).
 * A missing block is yielded without bytes when `tryGet` returns undefined;
 * its subtree is unknown and skipped.
 */
export async function * walkDag (tryGet: (cid: CID) => Uint8Array | undefined | Promise<Uint8Array | undefined>, root: CID, depth = 0): AsyncGenerator<WalkedBlock> {
  if (depth > MAX_DEPTH) throw new InvalidDagError('DAG too deep')
  const bytes = await tryGet(root)
  yield { cid: root, bytes }
  if (bytes == null || root.code === RAW_CODE) return
  if (root.code !== DAG_PB_CODE) throw new UnsupportedCodecError()
  const node = decodeFileNode(bytes)
  for (const link of node.links) yield * walkDag(tryGet, link, depth + 1)
}

/**
 * What the synchronous DAG check reads of the blocks held: the bytes of a
 * node, but of a raw leaf only its size. A leaf's bytes say nothing about
 * the DAG's shape, and reading a GiB of them back at the end of a download
 * cost it about 8% of its time. Both answer undefined for a block not held.
 */
export interface HeldBlocks {
  node: (cid: CID) => Uint8Array | undefined
  leafSize: (cid: CID) => number | undefined
}

export interface CheckedDag {
  /** Distinct blocks of the DAG with their sizes */
  blocks: Map<string, { cid: CID, size: number }>
  /** Distinct blocks not held (their subtrees are unknown) */
  missing: Map<string, CID>
  /** File size the root declares (0 when the root is missing) */
  fileSize: number
}

/**
 * Walks a DAG that came from elsewhere and checks that it is a UnixFS file
 * whose sizes agree at every level: each raw leaf is as long as its parent
 * says, each node's file size is what its parent says and the sum of its own
 * data and blocksizes. A DAG that passes reads back exactly `fileSize` bytes.
 */
export function checkDagSync (held: HeldBlocks, root: CID, cidKey: (cid: CID) => string): CheckedDag {
  const out: CheckedDag = { blocks: new Map(), missing: new Map(), fileSize: 0 }
  const visit = (cid: CID, expected: number | undefined, depth: number): void => {
    if (depth > MAX_DEPTH) throw new InvalidDagError('DAG too deep')
    const key = cidKey(cid)
    let size: number
    if (cid.code === RAW_CODE) {
      const leaf = held.leafSize(cid)
      if (leaf === undefined) {
        out.missing.set(key, cid)
        return
      }
      size = leaf
      out.blocks.set(key, { cid, size })
    } else if (cid.code === DAG_PB_CODE) {
      const bytes = held.node(cid)
      if (bytes == null) {
        out.missing.set(key, cid)
        return
      }
      const node = decodeFileNode(bytes)
      const declared = (node.data?.byteLength ?? 0) + node.blockSizes.reduce((a, b) => a + b, 0)
      if (declared !== node.fileSize) throw new InvalidDagError('node file size disagrees with its blocksizes')
      out.blocks.set(key, { cid, size: bytes.byteLength })
      node.links.forEach((link, i) => { visit(link, node.blockSizes[i], depth + 1) })
      size = node.fileSize
    } else {
      throw new UnsupportedCodecError()
    }
    if (expected !== undefined && size !== expected) throw new InvalidDagError('block size disagrees with its parent')
    if (depth === 0) out.fileSize = size
  }
  visit(root, undefined, 0)
  return out
}
