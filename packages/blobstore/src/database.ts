import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Sqlite from 'better-sqlite3'
import { StoreLockedError } from './errors.js'
import { SCHEMA, SCHEMA_VERSION } from './schema.js'
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3'

export interface OpenOptions {
  /** Path of the SQLite file (created with its folder if missing), or ':memory:' */
  path: string
  /** How long to wait for a lock held by another process, ms */
  busyTimeoutMs?: number
}

/**
 * One connection to the store's SQLite file, with a cache of prepared
 * statements. better-sqlite3 is synchronous, so each transaction runs to its
 * end without any other JavaScript interleaving: that is what makes the
 * temp-root protocol safe against the in-process GC.
 */
export class Database {
  readonly db: SqliteDatabase
  private readonly statements = new Map<string, Statement>()

  constructor (options: OpenOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true })
    this.db = new Sqlite(options.path, { timeout: options.busyTimeoutMs ?? 2000 })
    try {
      // page_size only takes effect before the file has content (and before WAL)
      this.db.pragma('page_size = 65536')
      // lets GC hand freed pages back to the file system, a few MiB at a time
      // (only takes effect when the file is created)
      this.db.pragma('auto_vacuum = INCREMENTAL')
      // Exclusive: one process owns the store, so every temp root found at open
      // belongs to a dead process and can be cleared.
      this.db.pragma('locking_mode = EXCLUSIVE')
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = NORMAL')
      this.db.pragma('cache_size = -16384')
      this.db.pragma('temp_store = MEMORY')
      this.db.exec(SCHEMA)
      this.stmt('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION))
    } catch (err: any) {
      this.db.close()
      if (err?.code === 'SQLITE_BUSY' || err?.code === 'SQLITE_LOCKED') throw new StoreLockedError()
      throw err
    }
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

  transaction<T> (fn: () => T): T {
    return this.db.transaction(fn)()
  }

  /**
   * Runs `fn` in a transaction whose commit is fsynced (synchronous=FULL): the
   * WAL frames of earlier NORMAL commits are flushed by the same fsync, so an
   * acknowledged add survives power loss, not only a process crash.
   */
  durableTransaction<T> (fn: () => T): T {
    this.db.pragma('synchronous = FULL')
    try {
      return this.db.transaction(fn)()
    } finally {
      this.db.pragma('synchronous = NORMAL')
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
  }
}
