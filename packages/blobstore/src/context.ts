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
  /** Buffered last-access times (root id → ms), flushed in batches */
  touched: Map<number, number>
  now: () => number
  /** Asks the background GC to run soon (no-op when not started) */
  kickGc: () => void
}

export function emit<T> (ctx: StoreContext, type: string, detail: T): void {
  ctx.events.dispatchEvent(new CustomEvent(type, { detail }))
}
