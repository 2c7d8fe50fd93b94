import { cidKey, parseCid } from './cids.js'
import { MAX_BLOCK_SIZE } from './constants.js'
import { Database } from './database.js'
import { BlockInUseError, BlockNotFoundError, BlockQuarantinedError } from './errors.js'
import { checkIncomingBlock } from './hashers.js'
import type { BlockStore } from './index.js'
import type { CID } from 'multiformats/cid'

interface BlockRow {
  id: number
  size: number
  refs: number
  quarantined_at: number | null
}

/**
 * The block table of the blob store as a BlockStore. The blob store shares
 * its `Database`; used alone (`SqliteBlockStore.open(path)`) it is a plain
 * verified block store. A block put here without a blob or session
 * referencing it is collected by the blob store's next GC.
 */
export class SqliteBlockStore implements BlockStore {
  readonly database: Database
  private readonly owned: boolean

  constructor (database: Database, owned = false) {
    this.database = database
    this.owned = owned
  }

  static open (path: string): SqliteBlockStore {
    return new SqliteBlockStore(new Database({ path }), true)
  }

  /**
   * Inserts (or heals) a block; returns its row id and whether bytes were newly
   * written. Synchronous so callers can compose it into one transaction.
   */
  putSync (cid: CID, bytes: Uint8Array): { id: number, inserted: boolean } {
    const key = cidKey(cid)
    const ins = this.database.stmt('INSERT OR IGNORE INTO blocks (cid, size) VALUES (?, ?)').run(key, bytes.byteLength)
    if (ins.changes === 1) {
      const id = Number(ins.lastInsertRowid)
      this.database.stmt('INSERT OR REPLACE INTO block_data (id, data) VALUES (?, ?)').run(id, bytes)
      return { id, inserted: true }
    }
    const row = this.metaSync(cid)
    if (row == null) throw new BlockNotFoundError()
    if (row.quarantined_at != null) {
      // good bytes (already verified by the caller) replace the bad ones
      this.database.stmt('INSERT OR REPLACE INTO block_data (id, data) VALUES (?, ?)').run(row.id, bytes)
      this.database.stmt('UPDATE blocks SET size = ?, quarantined_at = NULL WHERE id = ?').run(bytes.byteLength, row.id)
      this.database.quarantineChanged()
    }
    return { id: row.id, inserted: false }
  }

  metaSync (cid: CID): BlockRow | undefined {
    return this.database.stmt('SELECT id, size, refs, quarantined_at FROM blocks WHERE cid = ?').get(cidKey(cid)) as BlockRow | undefined
  }

  /** The block's bytes, or undefined when missing; throws when quarantined */
  tryGetSync (cid: CID): Uint8Array | undefined {
    const row = this.database.stmt('SELECT b.quarantined_at, d.data FROM blocks b JOIN block_data d ON d.id = b.id WHERE b.cid = ?').get(cidKey(cid)) as { quarantined_at: number | null, data: Uint8Array } | undefined
    if (row == null) return undefined
    if (row.quarantined_at != null) throw new BlockQuarantinedError(cid.toString())
    return row.data
  }

  getSync (cid: CID): Uint8Array {
    const bytes = this.tryGetSync(cid)
    if (bytes == null) throw new BlockNotFoundError(`Block ${cid.toString()} not found`)
    return bytes
  }

  async put (cid: CID, bytes: Uint8Array): Promise<void> {
    const c = parseCid(cid)
    checkIncomingBlock(c, bytes, MAX_BLOCK_SIZE)
    this.database.transaction(() => this.putSync(c, bytes))
    this.database.noteWrite(bytes.byteLength)
  }

  async get (cid: CID): Promise<Uint8Array> {
    return this.getSync(parseCid(cid))
  }

  async has (cid: CID): Promise<boolean> {
    return this.database.stmt('SELECT 1 FROM blocks WHERE cid = ?').get(cidKey(parseCid(cid))) != null
  }

  /** Refuses (BlockInUseError) to delete a block a blob or session references */
  async delete (cid: CID): Promise<void> {
    const c = parseCid(cid)
    const row = this.metaSync(c)
    if (row == null) return
    if (row.refs > 0) throw new BlockInUseError()
    this.database.transaction(() => this.database.stmt('DELETE FROM blocks WHERE id = ? AND refs <= 0').run(row.id))
  }

  async close (): Promise<void> {
    if (this.owned) await this.database.close()
  }
}
