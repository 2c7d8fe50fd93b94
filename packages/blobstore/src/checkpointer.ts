import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { Logger } from './logger.js'

export interface CheckpointerOptions {
  /** Start a background checkpoint once this many bytes wait in the WAL */
  thresholdBytes: number
  /** Writers wait (`throttle()`) while the WAL holds this many bytes */
  maxWalBytes: number
  /** Checkpoint whatever waits after this long without writes, ms */
  idleMs: number
}

export interface CheckpointStats {
  /** Checkpoints run */
  checkpoints: number
  /** Times a writer waited for the checkpointer */
  throttled: number
}

interface Reply { id: number, busy?: number, log?: number, checkpointed?: number, error?: string }

/*
 * The worker's whole program: its own connection to the store's file, running
 * PASSIVE checkpoints on request. It is a string so that it survives bundling
 * (the daemon is one esbuild bundle; a worker file beside it would not be).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Sqlite = require(workerData.sqlite)
const db = new Sqlite(workerData.path, { timeout: 0 })
db.pragma('synchronous = NORMAL')
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
parentPort.on('message', (m) => {
  if (m.type === 'checkpoint') {
    try {
      const r = checkpoint.get()
      parentPort.postMessage({ id: m.id, busy: r.busy, log: r.log, checkpointed: r.checkpointed })
    } catch (err) {
      parentPort.postMessage({ id: m.id, error: String(err && err.message || err) })
    }
  } else if (m.type === 'close') {
    db.close()
    parentPort.close()
  }
})
`

/**
 * Checkpoints the WAL from a worker thread with its own connection. SQLite's
 * automatic checkpoint runs inside a committing transaction, on the writer's
 * thread: every page of an add was written twice on the add's path (to the
 * WAL, then to the database). With it off, an add pays one write and one
 * fsync; the copy into the database happens here, on another thread, in
 * PASSIVE mode (it never blocks a reader or the writer), mostly once the add
 * has ended.
 *
 * The WAL can only restart from its beginning once a checkpoint has copied
 * every frame while nothing was being written, so a long add would grow it
 * without end: `throttle()` makes writers wait for a complete checkpoint once
 * the WAL holds `maxWalBytes`, which bounds it (plus one batch).
 *
 * Sizes are estimates from the bytes the store commits (the WAL also holds
 * b-tree pages): they only schedule the work, SQLite keeps it correct.
 */
export class WalCheckpointer {
  private worker?: Worker
  private nextId = 1
  private running?: { id: number, done: Promise<void>, resolve: () => void, writesAtStart: number, pendingAtStart: number }
  /** Bytes appended to the WAL since it last restarted */
  private walBytes = 0
  /** Bytes not yet copied into the database */
  private pending = 0
  private writes = 0
  /** Adds in flight: their pages are not copied while they write, unless the WAL grows large */
  private adds = 0
  private idleTimer?: ReturnType<typeof setTimeout>
  private stopped = false
  private failed = false
  readonly stats: CheckpointStats = { checkpoints: 0, throttled: 0 }

  /**
   * `onFail` is called once if the worker cannot run (it should turn SQLite's
   * own checkpoint back on, so the WAL stays bounded without it)
   */
  constructor (private readonly path: string | undefined, private readonly log: Logger, private readonly options: CheckpointerOptions, private readonly onFail?: () => void) {}

  /** Call after each commit with the bytes it wrote */
  noteWrite (bytes: number): void {
    if (this.stopped || this.path === undefined) return
    this.walBytes += bytes
    this.pending += bytes
    this.writes++
    if (this.pending >= this.threshold()) void this.request()
    this.armIdle()
  }

  /**
   * While an add writes, a checkpoint beside it competes for the disk and the
   * cores, and on a busy machine it halved the add's speed: the copy waits
   * for the add to end, unless the WAL reaches half its bound (then a large
   * add overlaps it, and waits less at the bound).
   */
  private threshold (): number {
    return this.adds > 0 ? Math.max(this.options.thresholdBytes, this.options.maxWalBytes / 2) : this.options.thresholdBytes
  }

  /** An add starts writing; call `endAdd()` when it has committed or failed */
  beginAdd (): void {
    this.adds++
  }

  endAdd (): void {
    this.adds = Math.max(this.adds - 1, 0)
    if (this.adds === 0 && this.pending >= this.options.thresholdBytes && !this.stopped) void this.request()
  }

  /** Resolves when a writer may append more: at once unless the WAL is at its bound */
  async throttle (): Promise<void> {
    // (bounded: a reader that never lets a checkpoint finish must not hang adds)
    for (let tries = 0; tries < 100 && !this.stopped && !this.failed && this.walBytes >= this.options.maxWalBytes; tries++) {
      this.stats.throttled++
      await this.request()
    }
  }

  private armIdle (): void {
    if (this.idleTimer != null) clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      if (this.pending > 0) void this.request()
    }, this.options.idleMs)
    this.idleTimer.unref?.()
  }

  /** Starts a checkpoint unless one is running; resolves when that one ends */
  private async request (): Promise<void> {
    if (this.running != null) return await this.running.done
    if (this.stopped || this.failed) return
    const worker = this.spawn()
    if (worker == null) return
    let resolve!: () => void
    const done = new Promise<void>(r => { resolve = r })
    const id = this.nextId++
    this.running = { id, done, resolve, writesAtStart: this.writes, pendingAtStart: this.pending }
    // referenced only while it works: an idle checkpointer never keeps the process alive
    worker.ref()
    worker.postMessage({ type: 'checkpoint', id })
    return await done
  }

  private spawn (): Worker | undefined {
    if (this.worker != null) return this.worker
    try {
      const sqlite = createRequire(import.meta.url).resolve('better-sqlite3')
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sqlite, path: this.path } })
      worker.unref()
      worker.on('message', (m: Reply) => { this.onReply(m) })
      worker.on('error', (err) => { this.fail(err) })
      worker.on('exit', () => {
        if (this.worker === worker) this.worker = undefined
        if (!this.stopped) this.fail(new Error('checkpoint worker exited'))
        this.settle()
      })
      this.worker = worker
      return worker
    } catch (err) {
      this.fail(err)
      return undefined
    }
  }

  private onReply (m: Reply): void {
    const run = this.running
    if (run == null || m.id !== run.id) return
    this.stats.checkpoints++
    if (m.error != null) {
      this.log.warn({ err: m.error }, 'WAL checkpoint failed')
    } else if (m.busy === 0 && m.log === m.checkpointed) {
      // every frame is in the database: the next write restarts the WAL,
      // unless something was written while this ran
      this.pending = Math.max(this.pending - run.pendingAtStart, 0)
      if (this.writes === run.writesAtStart) this.walBytes = 0
    }
    this.settle()
    if (this.pending >= this.threshold() && m.error == null) void this.request()
  }

  private settle (): void {
    const run = this.running
    this.running = undefined
    this.worker?.unref()
    run?.resolve()
  }

  private fail (err: unknown): void {
    if (this.failed) return
    this.failed = true
    this.log.error({ err }, 'WAL checkpointer stopped; SQLite checkpoints inside commits again')
    this.onFail?.()
    this.settle()
  }

  /** Waits for a running checkpoint, then ends the worker */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.idleTimer != null) clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    if (this.running != null) await this.running.done
    const worker = this.worker
    this.worker = undefined
    if (worker == null) return
    const exited = new Promise<void>(resolve => worker.once('exit', () => { resolve() }))
    worker.ref()
    worker.postMessage({ type: 'close' })
    await exited
  }
}
