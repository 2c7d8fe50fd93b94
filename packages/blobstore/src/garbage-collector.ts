import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { flushTouched, makeRoomInCache } from './accounting.js'
import { deleteGarbageSync, emit } from './context.js'
import { GC_BATCH_BLOCKS } from './constants.js'
import type { StoreContext } from './context.js'
import type { GcOptions, GcResult } from './index.js'

/**
 * Incremental GC. A block is garbage when nothing references it (`refs = 0`:
 * no blob membership and no temporary root). Each batch is one short
 * transaction that re-checks `refs` at delete time, and the collector yields
 * to the event loop between batches, so adds and reads proceed while it runs
 * and a block that an add has just re-referenced is never taken.
 */
export class GarbageCollector {
  private running?: Promise<GcResult>
  private timer?: ReturnType<typeof setTimeout>
  private started = false
  private stopping = new AbortController()

  constructor (private readonly ctx: StoreContext, private readonly intervalMs: number, private readonly batchBlocks = GC_BATCH_BLOCKS) {}

  /** One full collection; concurrent callers share the run in progress */
  async collect (options: GcOptions = {}): Promise<GcResult> {
    if (this.running != null) return this.running
    this.running = this.run(options).finally(() => { this.running = undefined })
    return this.running
  }

  private async run (options: GcOptions): Promise<GcResult> {
    const { ctx } = this
    const started = Date.now()
    const batch = options.batchBlocks ?? this.batchBlocks
    let blocksDeleted = 0
    let bytesFreed = 0
    let rootsEvicted = 0
    let bytesReleased = 0
    const onEvict = (e: Event): void => { rootsEvicted += (e as CustomEvent<{ cids: string[] }>).detail.cids.length }
    ctx.events.addEventListener('cache:evicted', onEvict)
    try {
      if (!ctx.db.open) return { blocksDeleted, bytesFreed, bytesReleased, rootsEvicted, durationMs: 0 }
      // on a full disk this write may fail: collecting is what frees the space, so it goes on
      try { flushTouched(ctx) } catch (err: any) { ctx.log.warn({ err: err?.code ?? String(err) }, 'could not record blob access times') }
      // a quota lowered since the last run, a disk that filled, or reads that blocked eviction
      try {
        ctx.db.transaction(() => makeRoomInCache(ctx, 0, false))
      } catch (err: any) {
        ctx.log.warn({ err: err?.code ?? String(err) }, 'cache over quota and cannot evict more now')
      }
      // one forward sweep in id order: blocks skipped because they are being
      // read wait for the next run
      const select = ctx.db.stmt('SELECT id, size FROM blocks WHERE refs <= 0 AND id > ? ORDER BY id LIMIT ?')
      let cursor = 0
      while (ctx.db.open && options.signal?.aborted !== true && !this.stopping.signal.aborted) {
        const rows = select.all(cursor, batch) as Array<{ id: number, size: number }>
        if (rows.length === 0) break
        cursor = rows[rows.length - 1].id
        const done = ctx.db.transaction(() => deleteGarbageSync(ctx, rows))
        blocksDeleted += done.blocks
        bytesFreed += done.bytes
        // on a nearly full disk the journal of one long transaction would not fit: commit batch by batch
        if (this.tight()) ctx.db.commit()
        await yieldToLoop()
      }
      bytesReleased = await this.release(options)
    } finally {
      ctx.events.removeEventListener('cache:evicted', onEvict)
    }
    const result = { blocksDeleted, bytesFreed, bytesReleased, rootsEvicted, durationMs: Date.now() - started }
    if (blocksDeleted > 0 || rootsEvicted > 0) ctx.log.debug(result, 'gc complete')
    emit(ctx, 'gc:complete', result)
    return result
  }

  /**
   * Hands free pages back to the file system, 64 pages (4 MiB) per step with
   * a yield between steps. Free pages would otherwise be reused by later
   * adds, but a user who deletes expects the disk space back.
   */
  private async release (options: GcOptions): Promise<number> {
    const { db } = this.ctx
    const pageSize = db.db.pragma('page_size', { simple: true }) as number
    let released = 0
    while (db.open && options.signal?.aborted !== true && !this.stopping.signal.aborted) {
      const free = db.db.pragma('freelist_count', { simple: true }) as number
      if (free === 0) break
      const before = db.db.pragma('page_count', { simple: true }) as number
      const tight = this.tight()
      db.transaction(() => db.db.pragma(`incremental_vacuum(${Math.min(free, tight ? 8 : 64)})`))
      if (tight) db.commit()
      const after = db.db.pragma('page_count', { simple: true }) as number
      if (after >= before) break // auto_vacuum is off (a file created before it was enabled)
      released += (before - after) * pageSize
      await yieldToLoop()
    }
    return released
  }

  /** The file system has less room than the cache must leave free (a full disk): work in small committed steps */
  private tight (): boolean {
    const room = this.ctx.cacheRoom()
    return room !== undefined && room < 0
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.stopping = new AbortController()
    if (this.intervalMs > 0) this.schedule(this.intervalMs)
  }

  /** Runs a collection soon (after an eviction or a released session) */
  kick (): void {
    if (this.started) this.schedule(100)
  }

  private schedule (delay: number): void {
    if (this.timer != null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.collect()
        .catch(err => { this.ctx.log.error({ err: String(err) }, 'gc failed') })
        .finally(() => { if (this.started && this.intervalMs > 0 && this.timer == null) this.schedule(this.intervalMs) })
    }, delay)
    this.timer.unref?.()
  }

  async stop (): Promise<void> {
    this.started = false
    this.stopping.abort()
    if (this.timer != null) clearTimeout(this.timer)
    this.timer = undefined
    await this.running?.catch(() => {})
  }
}
