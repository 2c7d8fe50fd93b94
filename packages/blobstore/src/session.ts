import { randomUUID } from 'node:crypto'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { isPinnedIn, reserve } from './accounting.js'
import { cidKey, cidToString, parseCid } from './cids.js'
import { INGEST_BATCH_BYTES, MAX_BLOCK_SIZE } from './constants.js'
import { checkDagSync, fileSizeOf } from './dag-reader.js'
import type { HeldBlocks } from './dag-reader.js'
import { BlockQuarantinedError, IncompleteDagError, SessionClosedError, WriteLostError } from './errors.js'
import { checkIncomingBlock } from './hashers.js'
import { checkContentType, checkLayer, checkOwner } from './validate.js'
import type { Layer } from './constants.js'
import { deleteGarbageSync } from './context.js'
import type { StoreContext } from './context.js'
import type { Block } from './dag-builder.js'
import type { AddResult, CidInput, CommitOptions, Session } from './index.js'
import type { CID } from 'multiformats/cid'

interface RootRow { id: number, size: number, dag_bytes: number, blocks: number }

/**
 * A temporary root. Its row in `temp_roots` is written before its first block,
 * and each block lands in the same transaction as its `temp_blocks` row, so a
 * block it needs always has `refs > 0` and GC cannot take it. Commit turns the
 * session into a blob (root row, memberships, pin) and drops the temporary
 * root in one transaction; release drops it and deletes what nobody else uses.
 */
export class TempRoot implements Session {
  readonly id = randomUUID()
  private closed = false
  /** Bytes this session wrote that were not already stored (and that still count toward its layer) */
  private charged = 0
  /** Bytes stored since the last midway quota check of a download */
  private sinceCheck = 0
  /** `Database.rollbacks` when the session began: a different count means its uncommitted writes may be gone */
  private readonly epoch: number

  constructor (private readonly ctx: StoreContext, private readonly kind: 'add' | 'download', private readonly layer?: Layer, private readonly onClose?: (s: TempRoot) => void) {
    this.epoch = ctx.db.rollbacks
    ctx.db.transaction(() => {
      ctx.db.stmt('INSERT INTO temp_roots (session, kind, pid, created_at) VALUES (?, ?, ?, ?)').run(this.id, kind, process.pid, ctx.now())
    })
  }

  private assertOpen (): void {
    if (this.closed) throw new SessionClosedError()
    if (!this.ctx.db.open) throw new SessionClosedError('store is closed')
    if (this.ctx.db.rollbacks !== this.epoch) throw new WriteLostError()
  }

  /** Stores verified blocks under this session in one transaction; returns new bytes */
  putBlocksSync (blocks: Block[]): number {
    this.assertOpen()
    if (blocks.length === 0) return 0
    const added = this.ctx.db.transaction(() => this.insertSync(blocks))
    this.charge(added)
    this.ctx.db.noteWrite(added, this.kind === 'add')
    // a download writes as much as an add: its pages reach the disk while it runs too
    this.ctx.db.flushAhead()
    return added
  }

  private insertSync (blocks: Block[]): number {
    let added = 0
    const link = this.ctx.db.stmt('INSERT OR IGNORE INTO temp_blocks (session, block_id) VALUES (?, ?)')
    for (const b of blocks) {
      const { id, inserted } = this.ctx.blocks.putSync(b.cid, b.bytes)
      link.run(this.id, id)
      if (inserted) added += b.bytes.byteLength
    }
    return added
  }

  get newBytes (): number { return this.charged }

  private charge (bytes: number): void {
    this.charged += bytes
    if (this.layer !== undefined && bytes !== 0) this.ctx.inflight.set(this.layer, (this.ctx.inflight.get(this.layer) ?? 0) + bytes)
  }

  private uncharge (): void {
    if (this.layer !== undefined && this.charged > 0) {
      const left = (this.ctx.inflight.get(this.layer) ?? 0) - this.charged
      if (left > 0) this.ctx.inflight.set(this.layer, left)
      else this.ctx.inflight.delete(this.layer)
    }
    this.charged = 0
  }

  /** Midway quota check of an add: what it wrote so far must fit its layer */
  checkQuotaSync (): void {
    if (this.layer === undefined) return
    this.ctx.db.transaction(() => reserve(this.ctx, this.layer as Layer, 0, true))
  }

  async putBlock (cid: CidInput, bytes: Uint8Array): Promise<void> {
    const c = parseCid(cid)
    checkIncomingBlock(c, bytes, MAX_BLOCK_SIZE)
    this.sinceCheck += this.putBlocksSync([{ cid: c, bytes }])
    if (this.sinceCheck >= INGEST_BATCH_BYTES) {
      this.sinceCheck = 0
      this.checkQuotaSync()
    }
  }

  expect (bytes: number): void {
    this.assertOpen()
    if (this.layer === undefined) return
    this.ctx.db.transaction(() => reserve(this.ctx, this.layer as Layer, Math.max(0, bytes), true))
  }

  async missing (root: CidInput): Promise<CID[]> {
    this.assertOpen()
    return [...checkDagSync(this.held, parseCid(root), cidToString).missing.values()]
  }

  /** What the DAG checks see of the store: a quarantined block counts as not held */
  private readonly held: HeldBlocks = {
    node: cid => {
      try {
        return this.ctx.blocks.tryGetSync(cid)
      } catch (err) {
        if (err instanceof BlockQuarantinedError) return undefined
        throw err
      }
    },
    leafSize: cid => {
      const meta = this.ctx.blocks.metaSync(cid)
      return meta == null || meta.quarantined_at != null ? undefined : meta.size
    }
  }

  /**
   * Commit for a download: the DAG under `root` must be complete; its blocks
   * become the blob's members (other blocks the session held are dropped).
   */
  async commit (root: CidInput, options: CommitOptions = {}): Promise<AddResult> {
    this.assertOpen()
    return this.commitSync(parseCid(root), options, true)
  }

  /**
   * Checks the stored DAG (inside the commit transaction): complete, and a
   * UnixFS file whose sizes agree everywhere. Returns its block ids.
   */
  private membersOf (root: CID): number[] {
    const dag = checkDagSync(this.held, root, cidToString)
    if (dag.missing.size > 0) throw new IncompleteDagError([...dag.missing.keys()].slice(0, 100))
    return [...dag.blocks.values()].map(b => {
      const meta = this.ctx.blocks.metaSync(b.cid)
      if (meta == null) throw new IncompleteDagError([cidToString(b.cid)])
      return meta.id
    })
  }

  /**
   * Registers `root` and pins it, durably: the commit also makes every block
   * the session wrote durable. The session must hold exactly the DAG's
   * blocks (an add does; `commit` links a download's walked blocks first, and
   * a download's extra blocks would only be over-counted members).
   */
  commitSync (root: CID, options: CommitOptions, walk = false): AddResult {
    this.assertOpen()
    const layer = checkLayer(options.layer ?? this.layer ?? 'sovereign')
    const owner = checkOwner(options.owner)
    const contentType = checkContentType(options.contentType)
    const ctx = this.ctx
    const now = ctx.now()
    let result: AddResult | undefined
    // this session's bytes stop being "in flight" and are charged as a blob
    const ownInflight = this.charged
    this.uncharge()
    try {
      result = ctx.db.durableTransaction(() => {
        const key = cidKey(root)
        let row = ctx.db.stmt('SELECT id, size, dag_bytes, blocks FROM roots WHERE cid = ?').get(key) as RootRow | undefined
        if (row == null) {
          const members = walk
            ? this.membersOf(root)
            : (ctx.db.stmt('SELECT block_id FROM temp_blocks WHERE session = ?').all(this.id) as Array<{ block_id: number }>).map(r => r.block_id)
          const sizeOf = ctx.db.stmt('SELECT size FROM blocks WHERE id = ?')
          const stats = { n: members.length, bytes: 0 }
          for (const id of members) stats.bytes += (sizeOf.get(id) as { size: number }).size
          const size = fileSize(ctx, root)
          reserve(ctx, layer, stats.bytes)
          const ins = ctx.db.stmt(`INSERT INTO roots (cid, size, dag_bytes, blocks, content_type, created_at, last_access)
            VALUES (?, ?, ?, ?, ?, ?, ?)`).run(key, size, stats.bytes, stats.n, contentType ?? null, now, now)
          row = { id: Number(ins.lastInsertRowid), size, dag_bytes: stats.bytes, blocks: stats.n }
          const member = ctx.db.stmt('INSERT OR IGNORE INTO root_blocks (root_id, block_id) VALUES (?, ?)')
          for (const id of members) member.run(row.id, id)
        } else {
          if (layer !== 'cache' && !isPinnedIn(ctx, row.id, layer)) reserve(ctx, layer, row.dag_bytes)
          if (contentType !== undefined) ctx.db.stmt('UPDATE roots SET content_type = ? WHERE id = ?').run(contentType, row.id)
          ctx.db.stmt('UPDATE roots SET last_access = ? WHERE id = ?').run(now, row.id)
        }
        if (layer !== 'cache') {
          ctx.db.stmt('INSERT OR IGNORE INTO pins (root_id, layer, owner, created_at) VALUES (?, ?, ?, ?)').run(row.id, layer, owner ?? '', now)
        }
        this.dropSync()
        return { cid: root, size: row.size, blocks: row.blocks, dagBytes: row.dag_bytes }
      })
    } catch (err) {
      // still open: put the reservation back so release() settles it
      this.charge(ownInflight)
      throw err
    }
    this.closed = true
    this.onClose?.(this)
    return result
  }

  private dropSync (): void {
    this.ctx.db.stmt('DELETE FROM temp_blocks WHERE session = ?').run(this.id)
    this.ctx.db.stmt('DELETE FROM temp_roots WHERE session = ?').run(this.id)
  }

  /**
   * Drops the temporary root, then deletes in small batches the blocks that
   * only this session referenced, so an aborted add leaves nothing behind.
   */
  async release (): Promise<void> {
    if (this.closed || !this.ctx.db.open) return
    this.closed = true
    this.onClose?.(this)
    this.uncharge()
    const ids = this.ctx.db.transaction(() => {
      const rows = this.ctx.db.stmt('SELECT block_id FROM temp_blocks WHERE session = ?').all(this.id) as Array<{ block_id: number }>
      this.dropSync()
      return rows.map(r => r.block_id)
    })
    for (let i = 0; i < ids.length; i += 32) {
      if (!this.ctx.db.open) return
      this.ctx.db.transaction(() => deleteGarbageSync(this.ctx, ids.slice(i, i + 32).map(id => ({ id, size: 0 }))))
      if (i + 32 < ids.length) await yieldToLoop()
    }
    // the file's freed pages go back to the file system at the next collection
    if (ids.length > 0) this.ctx.kickGc()
  }
}

function fileSize (ctx: StoreContext, root: CID): number {
  return fileSizeOf(root, ctx.blocks.getSync(root))
}
