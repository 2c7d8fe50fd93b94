import type { Layer } from './constants.js'
import type { Database } from './database.js'
import type { Logger } from './logger.js'
import type { SqliteBlockStore } from './sqlite-block-store.js'

/** State the blob store's parts share (one per open store) */
export interface StoreContext {
  db: Database
  blocks: SqliteBlockStore
  log: Logger
  events: EventTarget
  quotas: Partial<Record<Layer, number>>
  /** Bytes newly written by in-flight adds, per target layer */
  inflight: Map<Layer, number>
  /** Roots being read right now (root id → readers): eviction skips them */
  readers: Map<number, number>
  /** Blocks of blobs being read (block id → readers): GC skips them even if the blob is removed meanwhile */
  readBlocks: Map<number, number>
  /** Buffered last-access times (root id → ms), flushed in batches */
  touched: Map<number, number>
  now: () => number
  /** Asks the background GC to run soon (no-op when not started) */
  kickGc: () => void
  /** Free space on the store's file system beyond what the cache must leave free; undefined: not watched */
  cacheRoom: () => number | undefined
}

/** Registers a read of blob `rootId`; returns the function that ends it */
export function beginRead (ctx: StoreContext, rootId: number): () => void {
  const ids = (ctx.db.stmt('SELECT block_id FROM root_blocks WHERE root_id = ?').all(rootId) as Array<{ block_id: number }>).map(r => r.block_id)
  return holdBlocks(ctx, rootId, ids)
}

/** Registers a read of blob `rootId` whose blocks are `ids` (all of them); returns the function that ends it */
export function holdBlocks (ctx: StoreContext, rootId: number, ids: number[]): () => void {
  ctx.readers.set(rootId, (ctx.readers.get(rootId) ?? 0) + 1)
  ctx.touched.set(rootId, ctx.now())
  for (const id of ids) ctx.readBlocks.set(id, (ctx.readBlocks.get(id) ?? 0) + 1)
  let ended = false
  return () => {
    if (ended) return
    ended = true
    const n = (ctx.readers.get(rootId) ?? 1) - 1
    if (n > 0) ctx.readers.set(rootId, n)
    else ctx.readers.delete(rootId)
    for (const id of ids) {
      const m = (ctx.readBlocks.get(id) ?? 1) - 1
      if (m > 0) ctx.readBlocks.set(id, m)
      else ctx.readBlocks.delete(id)
    }
  }
}

/**
 * Deletes those of `ids` that nobody references and nobody is reading; call
 * inside a transaction. Returns the count and bytes deleted.
 */
export function deleteGarbageSync (ctx: StoreContext, ids: Array<{ id: number, size: number }>): { blocks: number, bytes: number } {
  const del = ctx.db.stmt('DELETE FROM blocks WHERE id = ? AND refs <= 0')
  let blocks = 0
  let bytes = 0
  for (const r of ids) {
    if (ctx.readBlocks.has(r.id)) continue
    if (del.run(r.id).changes === 1) {
      blocks++
      bytes += r.size
    }
  }
  return { blocks, bytes }
}

export function emit<T> (ctx: StoreContext, type: string, detail: T): void {
  ctx.events.dispatchEvent(new CustomEvent(type, { detail }))
}
