import { closeSync, fdatasync, fstatSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Sqlite from 'better-sqlite3'
import { COMMIT_BYTES, COMMIT_IDLE_MS, FLUSH_AHEAD_BYTES, MAX_BLOCK_SIZE } from './constants.js'
import { DiskFullError, isDiskFull, StoreLockedError } from './errors.js'
import { pageDropper, setMallocThresholds } from './page-cache.js'
import { SCHEMA, SCHEMA_VERSION } from './schema.js'
import { StoreLock } from './store-lock.js'
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3'

export interface OpenOptions {
  /** Path of the SQLite file (created with its folder if missing), or ':memory:' */
  path: string
  /** How long to wait for a lock held by another process, ms */
  busyTimeoutMs?: number
  /** Commit the open write transaction once this many bytes were written in it (default 4 GiB) */
  commitBytes?: number
  /** Called (synchronously, before the error leaves) when a write fails for lack of disk space */
  onDiskFull?: () => void
}
const PAGE_SIZE = 65536

let mallocTuned = false

/**
 * Every 1 MiB block bound into a statement or built into a record is a
 * malloc'd copy (better-sqlite3 binds with SQLITE_TRANSIENT), and a daemon
 * also allocates a buffer per 64 KiB read from every socket, freed in bulk
 * by V8's GC. glibc's malloc gives free memory at the top of its heap back
 * to the kernel once more than its trim threshold lies there (by default
 * 128 KiB, raised to twice the largest mmap'd chunk freed so far), and the
 * next allocations fault it in again. A plain insert loop paid a quarter of
 * a million page faults per GiB (190 → 540 MiB/s once tuned); a daemon
 * taking a 1 GiB upload over HTTP, 76,000-120,000 with the thresholds at 4
 * and 8 MiB, and 237-285 MiB/s against 399-545 with the trim threshold at
 * 32 MiB (about 12,000 faults, 1,200-2,000 for the next upload).
 *
 * So: allocations of up to 4 MiB (a block and its record) come from the
 * heap, and up to 32 MiB of free heap stays mapped. Set with `mallopt`
 * through the workspace's addon; where it cannot load, one 4 MiB allocation
 * freed once raises both thresholds to 4 and 8 MiB, as glibc's own
 * adjustment does (its page faults cost about 30 ms of a start). Other
 * allocators are unaffected.
 */
const MMAP_THRESHOLD_BYTES = 2 * MAX_BLOCK_SIZE
const TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024

function tuneMalloc (db: SqliteDatabase): void {
  if (mallocTuned) return
  mallocTuned = true
  if (setMallocThresholds(MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES)) return
  db.prepare('SELECT length(?)').pluck().get(Buffer.allocUnsafeSlow(MMAP_THRESHOLD_BYTES))
}

/**
 * One connection to the store's SQLite file, with a cache of prepared
 * statements. better-sqlite3 is synchronous, so each transaction runs to its
 * end without any other JavaScript interleaving: that is what makes the
 * temp-root protocol safe against the in-process GC.
 *
 * The file uses a rollback journal (`TRUNCATE`), not a WAL: SQLite journals
 * only the pages a transaction changes that existed when it began, so the
 * new pages that hold an add's leaves are written once, where a WAL writes
 * every page twice (to the WAL, then into the database at a checkpoint).
 * One process owns the file (`StoreLock`, and `locking_mode=EXCLUSIVE`), so
 * a rollback journal costs no concurrency: every reader is this connection.
 *
 * Writes go into one open transaction, as savepoints (`transaction`): an
 * operation is atomic on its own and rolls back alone, but nothing is
 * fsynced until someone needs durability (`durableTransaction`, the commit
 * of an add, a pin, an unpin), or `commitBytes` were written, or writes
 * paused for a second. So an add of any size pays one commit, at its end,
 * and a crash loses exactly what was not committed, which the journal rolls
 * back at the next open.
 */
export class Database {
  readonly db: SqliteDatabase
  readonly path: string
  private readonly statements = new Map<string, Statement>()
  private readonly lock?: StoreLock
  private readonly commitBytes: number
  private readonly control: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', Statement>
  /** Savepoints open right now (a transaction inside a transaction) */
  private depth = 0
  /** Bytes written in the open transaction */
  private pendingBytes = 0
  private idleTimer?: ReturnType<typeof setTimeout>
  /** A second descriptor of the file, for fdatasync ahead of the commit (see `flushAhead`) */
  private fd?: number
  private flushing?: Promise<void>
  private unflushedBytes = 0
  /** Of `unflushedBytes`, those that need not stay in the page cache (see `noteWrite`) */
  private uncachedBytes = 0
  /** The file offset up to which the flush ahead has dealt with the page cache (pages below were there at open, or dealt with) */
  private droppedTo = 0
  /** Bytes of the file the flush ahead asked the kernel to drop from the page cache since open */
  droppedBytes = 0
  /**
   * Counts the times the open transaction was lost without a commit (SQLite
   * rolls back by itself on some I/O errors, and a failed commit is rolled
   * back here): a session that wrote before such a loss must not commit.
   */
  rollbacks = 0

  private readonly onDiskFull?: () => void

  constructor (options: OpenOptions) {
    this.path = options.path
    this.commitBytes = options.commitBytes ?? COMMIT_BYTES
    this.onDiskFull = options.onDiskFull
    const busyTimeoutMs = options.busyTimeoutMs ?? 2000
    const file = options.path !== ':memory:'
    if (file) {
      mkdirSync(dirname(options.path), { recursive: true })
      // One process owns the store, so every temp root found at open belongs
      // to a dead process and can be cleared (see StoreLock).
      this.lock = new StoreLock(`${options.path}.lock`, busyTimeoutMs)
    }
    try {
      this.db = new Sqlite(options.path, { timeout: busyTimeoutMs })
    } catch (err) {
      this.lock?.release()
      throw err
    }
    try {
      // page_size only takes effect before the file has content
      this.db.pragma(`page_size = ${PAGE_SIZE}`)
      // lets GC hand freed pages back to the file system, a few MiB at a time
      // (only takes effect when the file is created; on an existing file it
      // would write, which a full disk refuses)
      const fresh = (this.db.pragma('page_count', { simple: true }) as number) === 0
      if (fresh) this.db.pragma('auto_vacuum = INCREMENTAL')
      this.db.pragma('locking_mode = EXCLUSIVE')
      // a store written by an earlier version is in WAL mode: this checkpoints
      // its WAL (replaying one left by a crash first) and removes it
      this.db.pragma('journal_mode = TRUNCATE')
      // FULL: a commit also syncs the truncated journal, so an acknowledged
      // transaction cannot be rolled back after a power loss. Commits are
      // rare, so this costs little (the level cannot change inside a transaction)
      this.db.pragma('synchronous = FULL')
      this.db.pragma('cache_size = -16384')
      this.db.pragma('temp_store = MEMORY')
      tuneMalloc(this.db)
      this.db.exec(SCHEMA)
      this.control = {
        begin: this.db.prepare('BEGIN'),
        commit: this.db.prepare('COMMIT'),
        rollback: this.db.prepare('ROLLBACK'),
        savepoint: this.db.prepare('SAVEPOINT op'),
        release: this.db.prepare('RELEASE op'),
        rollbackTo: this.db.prepare('ROLLBACK TO op')
      }
      // written only when it changes: a store on a full disk still opens, for reads and deletes
      const stored = this.stmt('SELECT value FROM meta WHERE key = ?').get('schema_version') as { value: string } | undefined
      if (stored?.value !== String(SCHEMA_VERSION)) {
        this.durableTransaction(() => {
          this.stmt('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION))
        })
      }
      if (file) {
        this.fd = openSync(options.path, 'r')
        // only what is written from now on may be dropped from the page cache
        this.droppedTo = fstatSync(this.fd).size
      }
    } catch (err: any) {
      this.db.close()
      this.lock?.release()
      if (err?.code === 'SQLITE_BUSY' || err?.code === 'SQLITE_LOCKED') throw new StoreLockedError()
      throw err
    }
  }

  /** false once a query found no quarantined block, until a block's quarantine changes */
  private quarantineUnknown = true

  /**
   * Whether any block may be quarantined. Reads ask on every call, and almost
   * always nothing is: the answer is remembered until `quarantineChanged()`.
   */
  maybeQuarantined (): boolean {
    if (!this.quarantineUnknown) return false
    const any = this.stmt('SELECT 1 FROM blocks WHERE quarantined_at IS NOT NULL LIMIT 1').get() != null
    if (!any) this.quarantineUnknown = false
    return any
  }

  /** Call after any write to `blocks.quarantined_at` */
  quarantineChanged (): void {
    this.quarantineUnknown = true
  }

  /** A prepared statement, compiled once per connection */
  stmt (sql: string): Statement {
    let s = this.statements.get(sql)
    if (s == null) {
      s = this.db.prepare(sql)
      this.statements.set(sql, s)
    }
    return s
  }

  /**
   * Reports `bytes` of block data written (they count towards `commitBytes`
   * and the flush ahead). `cached: false` says nobody here is likely to read
   * them soon (a download: a replica held for someone else, or a cache
   * fill), so once on disk their pages may leave the page cache.
   */
  noteWrite (bytes: number, cached = true): void {
    this.pendingBytes += bytes
    this.unflushedBytes += bytes
    if (!cached) this.uncachedBytes += bytes
  }

  /**
   * Runs `fn` atomically inside the open write transaction (beginning one if
   * none is open): if it throws, only its own changes are undone. Not
   * durable by itself; see `durableTransaction`.
   */
  transaction<T> (fn: () => T): T {
    const top = this.depth === 0
    if (top && !this.db.inTransaction) this.control.begin.run()
    this.control.savepoint.run()
    this.depth++
    try {
      const out = fn()
      this.control.release.run()
      return out
    } catch (err) {
      if (this.db.inTransaction) {
        this.control.rollbackTo.run()
        this.control.release.run()
      } else {
        this.lost()
      }
      throw this.translate(err)
    } finally {
      this.depth--
      if (top) this.afterWrite()
    }
  }

  /**
   * Runs `fn` like `transaction`, then commits the open transaction with
   * its fsyncs: when this returns, `fn`'s changes (and every earlier one)
   * survive a crash or a power loss.
   */
  durableTransaction<T> (fn: () => T): T {
    const out = this.transaction(fn)
    if (this.depth === 0) this.commit()
    return out
  }

  /** Commits what the open transaction holds (nothing to do when none is open) */
  commit (): void {
    if (this.depth > 0) throw new Error('commit inside a transaction')
    if (this.idleTimer != null) clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    if (!this.db.inTransaction) return
    try {
      this.control.commit.run()
    } catch (err) {
      // never leave half of a failed commit to be committed by the next one
      if (this.db.inTransaction) this.control.rollback.run()
      this.lost()
      throw this.translate(err)
    } finally {
      this.pendingBytes = 0
    }
  }

  /** A write refused for lack of space becomes DiskFullError, after telling `onDiskFull` */
  private translate (err: unknown): unknown {
    if (!isDiskFull(err) || err instanceof DiskFullError) return err
    try { this.onDiskFull?.() } catch { /* the hook must not hide the error */ }
    return new DiskFullError()
  }

  private lost (): void {
    this.rollbacks++
    this.pendingBytes = 0
  }

  private afterWrite (): void {
    if (!this.db.inTransaction) return
    if (this.pendingBytes >= this.commitBytes) {
      this.commit()
      return
    }
    if (this.idleTimer != null) clearTimeout(this.idleTimer)
    // what was written outside any durable operation is committed once writes pause
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      if (this.db.open && this.depth === 0) this.commit()
    }, COMMIT_IDLE_MS)
    this.idleTimer.unref?.()
  }

  /**
   * Starts an fdatasync of the file in the background once `FLUSH_AHEAD_BYTES`
   * were written since the last one started. The pages of a long add reach
   * the file during the add (SQLite spills them from its cache), and left
   * alone they would all wait in the page cache for the commit's fsync; a
   * sync on a thread of libuv's pool writes them out while this thread goes
   * on reading and hashing. Only ever earlier durability, never a
   * different order of writes: SQLite's correctness does not depend on what
   * has not reached the disk yet.
   *
   * When most of what was written since the last flush was a download's
   * (`noteWrite(n, false)`), the part of the file that grew before the sync
   * began leaves the page cache once it is on disk. A replica of a family
   * member's 1 GiB video then does not push what this machine is using out
   * of memory; and on virtual machines that back guest memory lazily, where
   * every page cache page the kernel takes from free memory costs a fault in
   * the host (measured here: 2.2-3 s per GiB written, against 0.25 s into
   * recycled pages), the download keeps reusing the same few dozen MiB:
   * a 1 GiB fetch from a peer went from 112-131 to 155-197 MiB/s. What an
   * add writes stays cached: it is often read back at once.
   */
  flushAhead (): void {
    const fd = this.fd
    if (fd === undefined || this.flushing != null || this.unflushedBytes < FLUSH_AHEAD_BYTES) return
    const drop = this.uncachedBytes * 2 > this.unflushedBytes ? pageDropper() : undefined
    const from = this.droppedTo
    const end = fstatSync(fd).size
    this.unflushedBytes = 0
    this.uncachedBytes = 0
    this.flushing = new Promise<void>(resolve => {
      fdatasync(fd, (err) => {
        this.flushing = undefined
        // the pages below `end` were written before the sync began, so they are clean now
        const start = Math.min(from, end)
        if (err == null && drop != null && this.fd === fd && drop(fd, start, end - start)) this.droppedBytes += end - start
        this.droppedTo = end
        resolve()
      })
    })
  }

  get open (): boolean {
    return this.db.open
  }

  async close (): Promise<void> {
    if (!this.db.open) return
    try {
      this.commit()
    } finally {
      this.db.close()
      // our descriptor is closed after SQLite's: closing any descriptor of a
      // file drops the process's fcntl locks on it
      await this.flushing
      if (this.fd !== undefined) closeSync(this.fd)
      this.fd = undefined
      this.lock?.release()
    }
  }
}
