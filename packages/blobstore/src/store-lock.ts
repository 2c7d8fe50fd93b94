import Sqlite from 'better-sqlite3'
import { StoreLockedError } from './errors.js'
import type { Database as SqliteDatabase } from 'better-sqlite3'

/**
 * One process owns a store: every temporary root found at open then belongs
 * to a process that died, and is cleared. The lock lives in a small side
 * file, `<path>.lock`, a SQLite database held in exclusive mode with its
 * owner's pid written in it: it is taken before the store's own file is
 * opened, so a second owner fails at once with ERR_STORE_LOCKED, whatever
 * the store's file is doing (it is in exclusive locking mode too, but only
 * from its first read on).
 *
 * The lock is a kernel file lock (fcntl), not the presence of the file: it is
 * released when the owner exits or is killed, so there is no stale lock to
 * detect and no pid that could be reused by another process. A second open in
 * the same process is refused too (SQLite tracks its locks per inode across
 * connections).
 */
export class StoreLock {
  private readonly db: SqliteDatabase

  constructor (readonly path: string, busyTimeoutMs: number) {
    const db = new Sqlite(path, { timeout: busyTimeoutMs })
    try {
      db.pragma('locking_mode = EXCLUSIVE')
      // no journal file beside the lock: its one row is informational
      db.pragma('journal_mode = MEMORY')
      db.pragma('synchronous = OFF')
      // the first write takes the exclusive lock; exclusive mode keeps it until close
      db.exec('CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, since INTEGER NOT NULL)')
      db.prepare('INSERT OR REPLACE INTO owner (id, pid, since) VALUES (1, ?, ?)').run(process.pid, Date.now())
    } catch (err: any) {
      db.close()
      if (err?.code === 'SQLITE_BUSY' || err?.code === 'SQLITE_LOCKED') throw new StoreLockedError()
      throw err
    }
    this.db = db
  }

  release (): void {
    if (this.db.open) this.db.close()
  }
}
