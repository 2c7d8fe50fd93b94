import { setTimeout as sleep } from 'node:timers/promises'
import { cidFromKey, cidToString } from './cids.js'
import { emit } from './context.js'
import { matchesCid } from './hashers.js'
import type { StoreContext } from './context.js'
import type { ScrubOptions, ScrubPassResult, ScrubStatus } from './index.js'
import type { CID } from 'multiformats/cid'

/** Marks a block as quarantined and reports it */
export function quarantine (ctx: StoreContext, id: number, cid: CID, source: 'scrub' | 'read'): void {
  ctx.db.transaction(() => {
    ctx.db.stmt('UPDATE blocks SET quarantined_at = ? WHERE id = ? AND quarantined_at IS NULL').run(ctx.now(), id)
  })
  ctx.db.quarantineChanged()
  const c = cidToString(cid)
  ctx.log.error({ cid: c, source }, 'block failed verification: quarantined')
  emit(ctx, 'block:quarantined', { cid: c, source })
}

/**
 * Re-hashes stored blocks in id order at a bounded rate. A block whose bytes
 * no longer match its CID is quarantined: reads of blobs that contain it fail
 * with BlockQuarantinedError until good bytes are put again.
 */
export class Scrubber {
  private readonly status: Omit<ScrubStatus, 'quarantined' | 'running'> & { running: boolean }
  private loop?: Promise<void>
  private abort = new AbortController()

  constructor (private readonly ctx: StoreContext, bytesPerSecond: number, private readonly intervalMs: number) {
    this.status = { running: false, passes: 0, blocksChecked: 0, bytesChecked: 0, corrupt: 0, bytesPerSecond }
  }

  getStatus (): ScrubStatus {
    const row = this.ctx.db.open
      ? this.ctx.db.stmt('SELECT COUNT(*) AS n FROM blocks WHERE quarantined_at IS NOT NULL').get() as { n: number }
      : { n: 0 }
    return { ...this.status, quarantined: row.n }
  }

  private saveCursor (cursor: number): void {
    if (!this.ctx.db.open) return
    this.ctx.db.transaction(() => {
      this.ctx.db.stmt("INSERT OR REPLACE INTO meta (key, value) VALUES ('scrub_cursor', ?)").run(String(cursor))
    })
  }

  private savedCursor (): number {
    const row = this.ctx.db.stmt("SELECT value FROM meta WHERE key = 'scrub_cursor'").get() as { value: string } | undefined
    const n = Number(row?.value ?? 0)
    return Number.isSafeInteger(n) && n > 0 ? n : 0
  }

  /**
   * One pass over the blocks held when it starts. The background loop resumes
   * where the last pass stopped (the cursor is saved in the database), so a
   * device that restarts often still gets all of its blocks checked.
   */
  async pass (options: ScrubOptions = {}, resume = false): Promise<ScrubPassResult> {
    const { ctx } = this
    const rate = options.bytesPerSecond ?? this.status.bytesPerSecond
    const result: ScrubPassResult = { blocksChecked: 0, bytesChecked: 0, corrupt: 0 }
    const next = ctx.db.stmt(`SELECT b.id, b.cid, d.data FROM blocks b JOIN block_data d ON d.id = b.id
      WHERE b.id > ? AND b.quarantined_at IS NULL ORDER BY b.id LIMIT 1`)
    const last = (ctx.db.stmt('SELECT COALESCE(MAX(id), 0) AS m FROM blocks').get() as { m: number }).m
    const started = Date.now()
    this.status.lastPassStartedAt = started
    let cursor = resume ? this.savedCursor() : 0
    while (ctx.db.open) {
      if (options.signal?.aborted === true || this.abort.signal.aborted) {
        this.saveCursor(cursor)
        return result
      }
      const row = next.get(cursor) as { id: number, cid: Uint8Array, data: Uint8Array } | undefined
      if (row == null || row.id > last) break
      cursor = row.id
      const cid = cidFromKey(row.cid)
      let ok = false
      try {
        ok = matchesCid(cid, row.data)
      } catch {
        ok = false
      }
      if (!ok) {
        quarantine(ctx, row.id, cid, 'scrub')
        result.corrupt++
        this.status.corrupt++
      }
      if (++result.blocksChecked % 256 === 0) this.saveCursor(cursor)
      result.bytesChecked += row.data.byteLength
      this.status.blocksChecked++
      this.status.bytesChecked += row.data.byteLength
      // bounded rate: never get ahead of bytes / rate
      const due = rate > 0 ? (result.bytesChecked / rate) * 1000 - (Date.now() - started) : 0
      try {
        if (due > 1) await sleep(due, undefined, { signal: AbortSignal.any([this.abort.signal, ...(options.signal != null ? [options.signal] : [])]) })
        else if (result.blocksChecked % 64 === 0) await sleep(0)
      } catch {
        this.saveCursor(cursor)
        return result
      }
    }
    this.saveCursor(0)
    this.status.passes++
    this.status.lastPassCompletedAt = Date.now()
    emit(ctx, 'scrub:pass', result)
    ctx.log.info({ ...result, ms: Date.now() - started }, 'scrub pass complete')
    return result
  }

  start (): void {
    if (this.loop != null || this.intervalMs <= 0) return
    this.abort = new AbortController()
    this.status.running = true
    const signal = this.abort.signal
    this.loop = (async () => {
      while (!signal.aborted) {
        try {
          await this.pass({}, true)
        } catch (err) {
          if (!signal.aborted) this.ctx.log.error({ err: String(err) }, 'scrub pass failed')
        }
        try {
          await sleep(this.intervalMs, undefined, { signal, ref: false })
        } catch {
          break
        }
      }
    })()
  }

  async stop (): Promise<void> {
    this.abort.abort()
    await this.loop
    this.loop = undefined
    this.status.running = false
  }
}
