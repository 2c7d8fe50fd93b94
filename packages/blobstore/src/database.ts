import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Sqlite from 'better-sqlite3'
import { StoreLockedError } from './errors.js'
import { SCHEMA, SCHEMA_VERSION } from './schema.js'
import { StoreLock } from './store-lock.js'
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3'

export interface OpenOptions {
  /** Path of the SQLite file (created with its folder if missing), or ':memory:' */
  path: string
  /** How long to wait for a lock held by another process, ms */
  busyTimeoutMs?: number
  /**
   * Let SQLite checkpoint the WAL inside commits (default true). The blob
   * store turns it off and checkpoints from a worker thread instead.
   */
  autoCheckpoint?: boolean
  /** Once a checkpoint has emptied it, the WAL file is cut back to this size (default 64 MiB) */
  walSizeLimit?: number
}
const PAGE_SIZE = 65536

let mallocTuned = false

/**
 * Every 1 MiB block bound into a statement or built into a record is a
 * malloc'd copy (better-sqlite3 binds with SQLITE_TRANSIENT). glibc's malloc
 * gives the top of its heap back to the kernel once more than its trim
 * threshold is free there (by default twice the largest mmap'd chunk freed
 * so far), so it gave back, and the next block faulted in again, about
 * 2 MiB per block: a quarter of a million page faults per GiB, two thirds
 * of the time of a plain insert loop (measured: 190 → 540 MiB/s). One
 * 16 MiB allocation freed once raises both thresholds for the process (to
 * 16 and 32 MiB, glibc's dynamic maximum), as `GLIBC_TUNABLES` would, from
 * inside the library. Other allocators are unaffected; the cost is that up
 * to 32 MiB of freed heap may stay mapped.
 */
function tuneMalloc (db: SqliteDatabase): void {
  if (mallocTuned) return
  mallocTuned = true
  db.prepare('SELECT length(?)').pluck().get(Buffer.allocUnsafeSlow(16 * 1024 * 1024))
}

/**
 * One connection to the store's SQLite file, with a cache of prepared
 * statements. better-sqlite3 is synchronous, so each transaction runs to its
 * end without any other JavaScript interleaving: that is what makes the
 * temp-root protocol safe against the in-process GC.
 */
export class Database {
  readonly db: SqliteDatabase
  readonly path: string
  private readonly statements = new Map<string, Statement>()
  private readonly lock?: StoreLock
  private readonly syncFull: Statement
  private readonly syncNormal: Statement

  constructor (options: OpenOptions) {
    this.path = options.path
    const busyTimeoutMs = options.busyTimeoutMs ?? 2000
    if (options.path !== ':memory:') {
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
      // page_size only takes effect before the file has content (and before WAL)
      this.db.pragma(`page_size = ${PAGE_SIZE}`)
      // lets GC hand freed pages back to the file system, a few MiB at a time
      // (only takes effect when the file is created)
      this.db.pragma('auto_vacuum = INCREMENTAL')
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = NORMAL')
      if (options.autoCheckpoint === false) this.db.pragma('wal_autocheckpoint = 0')
      this.db.pragma(`journal_size_limit = ${options.walSizeLimit ?? 64 * 1024 * 1024}`)
      this.db.pragma('cache_size = -16384')
      this.db.pragma('temp_store = MEMORY')
      tuneMalloc(this.db)
      this.db.exec(SCHEMA)
      this.stmt('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION))
      this.syncFull = this.db.prepare('PRAGMA synchronous = FULL')
      this.syncNormal = this.db.prepare('PRAGMA synchronous = NORMAL')
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

  /** Told the bytes each committed write transaction added to the WAL (estimates; the blob store's checkpointer listens) */
  onWrite?: (bytes: number) => void

  /** Reports `bytes` of block data written (on top of the page every transaction counts for) */
  noteWrite (bytes: number): void {
    this.onWrite?.(bytes)
  }

  transaction<T> (fn: () => T): T {
    const out = this.db.transaction(fn)()
    this.onWrite?.(PAGE_SIZE)
    return out
  }

  /**
   * Runs `fn` in a transaction whose commit is fsynced (synchronous=FULL): the
   * WAL frames of earlier NORMAL commits are flushed by the same fsync, so an
   * acknowledged add survives power loss, not only a process crash.
   */
  durableTransaction<T> (fn: () => T): T {
    this.syncFull.run()
    try {
      const out = this.db.transaction(fn)()
      this.onWrite?.(PAGE_SIZE)
      return out
    } finally {
      this.syncNormal.run()
    }
  }

  get open (): boolean {
    return this.db.open
  }

  close (): void {
    if (!this.db.open) return
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)')
    } catch {
      // best effort: the WAL is replayed at the next open anyway
    }
    this.db.close()
    this.lock?.release()
  }
}
