import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { deleteRootSync, flushTouched, usedBytes } from './accounting.js'
import { carStream } from './car.js'
import { cidFromKey, cidKey, cidToString, parseCid } from './cids.js'
import { GC_BATCH_BLOCKS, GC_INTERVAL_MS, INGEST_BATCH_BYTES, LAYERS, LRU_FLUSH_INTERVAL_MS, MAX_BLOCK_SIZE, RAW_CODE, SCRUB_BYTES_PER_SECOND, SCRUB_PASS_INTERVAL_MS } from './constants.js'
import { Database } from './database.js'
import { buildDag } from './dag-builder.js'
import { readRange, walkDag } from './dag-reader.js'
import { BlobNotFoundError, BlockQuarantinedError, InvalidDagError, StoreClosedError } from './errors.js'
import { GarbageCollector } from './garbage-collector.js'
import { checkIncomingBlock, matchesCid } from './hashers.js'
import { noopComponentLogger } from './logger.js'
import { listPins, pinSync, pinsOfRoot, unpinSync } from './pins.js'
import { Scrubber, quarantine } from './scrubber.js'
import { TempRoot } from './session.js'
import { SqliteBlockStore } from './sqlite-block-store.js'
import { checkContentType, checkLayer, checkNonNegativeInt, checkOwner, checkQuotas, resolveRange } from './validate.js'
import type { Layer } from './constants.js'
import { beginRead, holdBlocks } from './context.js'
import type { StoreContext } from './context.js'
import type { ByteSource } from './chunker.js'
import type {
  AddOptions, AddResult, BlobHead, BlobInfo, BlobStat, BlobStore, BlobStoreComponents, BlobStoreInit, CatOptions, CidInput, GcOptions,
  GcResult, LayerUsage, ListOptions, Pin, PinFilter, PinOptions, ReadResult, ScrubOptions, ScrubPassResult, ScrubStatus,
  Session, SessionOptions, StorageUsage, UnpinOptions
} from './index.js'
import type { CID } from 'multiformats/cid'

interface RootRow {
  id: number
  cid: Uint8Array
  size: number
  dag_bytes: number
  blocks: number
  content_type: string | null
  created_at: number
  last_access: number
}

export class SqliteBlobStore extends EventTarget implements BlobStore {
  private readonly ctx: StoreContext
  private readonly gcRunner: GarbageCollector
  private readonly scrubber: Scrubber
  private readonly defaultLayer: Layer
  private readonly verifyReads: boolean
  private readonly sessions = new Set<TempRoot>()
  private lruTimer?: ReturnType<typeof setInterval>

  constructor (init: BlobStoreInit, components: BlobStoreComponents = {}) {
    super()
    if (typeof init?.path !== 'string' || init.path.length === 0) throw new TypeError('init.path is required')
    const quotas = checkQuotas(init.quotas)
    this.defaultLayer = checkLayer(init.defaultLayer ?? 'sovereign')
    this.verifyReads = init.verifyReads ?? true
    const commitBytes = init.commitBytes === undefined ? undefined : checkNonNegativeInt(init.commitBytes, 'commitBytes')
    const db = new Database({ path: init.path, busyTimeoutMs: init.busyTimeoutMs, commitBytes, onDiskFull: init.onDiskFull })
    const freeSpace = init.freeSpace
    const minFree = checkNonNegativeInt(init.cacheMinFreeBytes ?? 0, 'cacheMinFreeBytes')
    const log = (components.logger ?? noopComponentLogger).forComponent('hearth:blobstore')
    this.ctx = {
      db,
      blocks: new SqliteBlockStore(db),
      log,
      events: this,
      quotas,
      inflight: new Map(),
      readers: new Map(),
      readBlocks: new Map(),
      touched: new Map(),
      now: () => Date.now(),
      kickGc: () => { this.gcRunner.kick() },
      cacheRoom: () => {
        const free = freeSpace?.()
        return free === undefined ? undefined : free - minFree
      }
    }
    this.gcRunner = new GarbageCollector(this.ctx, checkNonNegativeInt(init.gcIntervalMs ?? GC_INTERVAL_MS, 'gcIntervalMs'), init.gcBatchBlocks ?? GC_BATCH_BLOCKS)
    this.scrubber = new Scrubber(this.ctx, checkNonNegativeInt(init.scrubBytesPerSecond ?? SCRUB_BYTES_PER_SECOND, 'scrubBytesPerSecond'), checkNonNegativeInt(init.scrubIntervalMs ?? SCRUB_PASS_INTERVAL_MS, 'scrubIntervalMs'))
    // Only one process opens the file (StoreLock), so every temporary
    // root found now belongs to a process that died: its blocks become garbage.
    const cleared = db.transaction(() => {
      const n = (db.stmt('SELECT COUNT(*) AS n FROM temp_roots').get() as { n: number }).n
      db.stmt('DELETE FROM temp_blocks').run()
      db.stmt('DELETE FROM temp_roots').run()
      return n
    })
    if (cleared > 0) log.warn({ sessions: cleared }, 'cleared temporary roots left by a crashed process')
  }

  private get db (): Database {
    if (!this.ctx.db.open) throw new StoreClosedError()
    return this.ctx.db
  }

  private assertOpen (): void {
    if (!this.ctx.db.open) throw new StoreClosedError()
  }

  // ---- adds and sessions -------------------------------------------------

  async add (source: ByteSource, options: AddOptions = {}): Promise<AddResult> {
    this.assertOpen()
    const layer = checkLayer(options.layer ?? this.defaultLayer)
    const commit = { layer, owner: checkOwner(options.owner), contentType: checkContentType(options.contentType) }
    const session = new TempRoot(this.ctx, 'add', layer, this.untrack)
    this.sessions.add(session)
    let sinceBatch = 0
    try {
      const built = await buildDag(source, {
        put: (block) => {
          // Stored in the same tick as it was hashed (SQLite copies the
          // bytes it is given), so what is written is what was verified,
          // even from a source that reuses its buffers. Nothing is fsynced
          // before the commit (see Database).
          session.putBlocksSync([block])
          sinceBatch += block.bytes.byteLength
          if (sinceBatch < INGEST_BATCH_BYTES) return
          sinceBatch = 0
          session.checkQuotaSync()
          // other work gets a turn (the disk gets ahead of the commit in `putBlocksSync`)
          return yieldToLoop()
        }
      }, { signal: options.signal, onProgress: options.onProgress, transientLeaves: true })
      // the blob row, its pin and the end of the temporary root commit
      // together with every block, durably, before the promise resolves
      return session.commitSync(built.cid, commit)
    } catch (err) {
      await session.release()
      throw err
    }
  }

  async session (options: SessionOptions = {}): Promise<Session> {
    this.assertOpen()
    const s = new TempRoot(this.ctx, 'download', options.layer === undefined ? undefined : checkLayer(options.layer), this.untrack)
    this.sessions.add(s)
    return s
  }

  /** Open sessions are released by close() */
  private readonly untrack = (s: TempRoot): void => { this.sessions.delete(s) }

  // ---- reads ---------------------------------------------------------------

  private rootRow (cid: CID): RootRow {
    const row = this.db.stmt('SELECT * FROM roots WHERE cid = ?').get(cidKey(cid)) as RootRow | undefined
    if (row == null) throw new BlobNotFoundError(`Blob ${cidToString(cid)} not found`)
    return row
  }

  /** Blocks of this blob that are quarantined (no query while the store holds none) */
  private quarantinedIn (rootId: number): number {
    if (!this.ctx.db.maybeQuarantined()) return 0
    return (this.db.stmt(`SELECT COUNT(*) AS n FROM root_blocks rb JOIN blocks b ON b.id = rb.block_id
      WHERE rb.root_id = ? AND b.quarantined_at IS NOT NULL`).get(rootId) as { n: number }).n
  }

  /** `cid` is the CID the row was looked up by, when there is one (its bytes are the row's key: no decoding) */
  private headOf (row: RootRow, cid = cidFromKey(row.cid)): BlobHead {
    return {
      cid,
      size: row.size,
      blocks: row.blocks,
      dagBytes: row.dag_bytes,
      ...(row.content_type != null ? { contentType: row.content_type } : {}),
      quarantinedBlocks: this.quarantinedIn(row.id),
      createdAt: row.created_at
    }
  }

  private statOf (row: RootRow, head = this.headOf(row)): BlobStat {
    const pins = pinsOfRoot(this.ctx, row.id)
    const layers = [...new Set(pins.map(p => p.layer))] as Layer[]
    return {
      cid: head.cid,
      size: head.size,
      blocks: head.blocks,
      dagBytes: head.dagBytes,
      ...(head.contentType != null ? { contentType: head.contentType } : {}),
      layers: layers.length > 0 ? LAYERS.filter(l => layers.includes(l)) : ['cache'],
      pins,
      quarantinedBlocks: head.quarantinedBlocks,
      createdAt: head.createdAt,
      lastAccess: Math.max(row.last_access, this.ctx.touched.get(row.id) ?? 0)
    }
  }

  async stat (cid: CidInput): Promise<BlobStat> {
    const c = parseCid(cid)
    const row = this.rootRow(c)
    return this.statOf(row, this.headOf(row, c))
  }

  async head (cid: CidInput): Promise<BlobHead> {
    const c = parseCid(cid)
    return this.headOf(this.rootRow(c), c)
  }

  async has (cid: CidInput): Promise<boolean> {
    return this.db.stmt('SELECT 1 FROM roots WHERE cid = ?').get(cidKey(parseCid(cid))) != null
  }

  /** Reads a block for a blob, re-hashing it when `verifyReads` is on */
  private readBlock (cid: CID): Uint8Array {
    return this.checkRead(cid, this.ctx.blocks.getSync(cid))
  }

  private checkRead (cid: CID, bytes: Uint8Array): Uint8Array {
    if (this.verifyReads && !matchesCid(cid, bytes)) {
      const meta = this.ctx.blocks.metaSync(cid)
      if (meta != null) quarantine(this.ctx, meta.id, cid, 'read')
      throw new BlockQuarantinedError(cidToString(cid))
    }
    return bytes
  }

  async read (cid: CidInput, options: CatOptions = {}): Promise<ReadResult> {
    const c = parseCid(cid)
    const row = this.rootRow(c)
    const head = this.headOf(row, c)
    const { offset, length } = resolveRange(row.size, options.offset, options.length)
    if (head.quarantinedBlocks > 0) {
      const bad = this.db.stmt(`SELECT b.cid FROM root_blocks rb JOIN blocks b ON b.id = rb.block_id
        WHERE rb.root_id = ? AND b.quarantined_at IS NOT NULL LIMIT 1`).get(row.id) as { cid: Uint8Array }
      throw new BlockQuarantinedError(cidToString(cidFromKey(bad.cid)))
    }
    let stat: BlobStat | undefined
    const statOf = (): BlobStat => (stat ??= this.statOf(row, head))
    return {
      head,
      get stat () { return statOf() },
      offset,
      length,
      body: this.body(row.id, c, offset, length, options.signal)
    }
  }

  private async * body (rootId: number, cid: CID, offset: number, length: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    if (length <= 0) return
    if (cid.code === RAW_CODE) {
      // a reader until the consumer is done (eviction skips it); its one
      // block is read and checked within this tick, so GC has none to skip
      const end = holdBlocks(this.ctx, rootId, [])
      try {
        if (signal?.aborted === true) throw signal.reason
        const bytes = this.checkRead(cid, this.ctx.blocks.getSync(cid))
        if (offset + length > bytes.byteLength) throw new InvalidDagError(`DAG yielded ${bytes.byteLength - offset} bytes where ${length} were expected`)
        yield bytes.subarray(offset, offset + length)
      } finally {
        end()
      }
      return
    }
    const end = beginRead(this.ctx, rootId)
    try {
      for await (const chunk of readRange(b => this.readBlock(b), cid, offset, length)) {
        if (signal?.aborted === true) throw signal.reason
        yield chunk
      }
    } finally {
      end()
    }
  }

  async * cat (cid: CidInput, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
    const { body } = await this.read(cid, options)
    yield * body
  }

  async list (options: ListOptions = {}): Promise<BlobInfo[]> {
    const limit = Math.min(checkNonNegativeInt(options.limit ?? 100, 'limit'), 1000)
    const after = options.after === undefined ? new Uint8Array(0) : cidKey(parseCid(options.after))
    const rows = this.db.stmt('SELECT cid, size, content_type, created_at FROM roots WHERE cid > ? ORDER BY cid LIMIT ?').all(after, limit) as RootRow[]
    return rows.map(r => ({ cid: cidFromKey(r.cid), size: r.size, ...(r.content_type != null ? { contentType: r.content_type } : {}), createdAt: r.created_at }))
  }

  async remove (cid: CidInput): Promise<void> {
    const row = this.rootRow(parseCid(cid))
    this.db.durableTransaction(() => { deleteRootSync(this.ctx, row.id) })
    this.gcRunner.kick()
  }

  // ---- blocks --------------------------------------------------------------

  async hasBlock (cid: CidInput): Promise<boolean> {
    return this.db.stmt('SELECT 1 FROM blocks WHERE cid = ?').get(cidKey(parseCid(cid))) != null
  }

  async getBlock (cid: CidInput): Promise<Uint8Array> {
    this.assertOpen()
    return this.readBlock(parseCid(cid))
  }

  async putBlock (cid: CidInput, bytes: Uint8Array): Promise<void> {
    const c = parseCid(cid)
    checkIncomingBlock(c, bytes, MAX_BLOCK_SIZE)
    this.db.transaction(() => this.ctx.blocks.putSync(c, bytes))
    this.db.noteWrite(bytes.byteLength)
  }

  async * blocksOf (root: CidInput): AsyncGenerator<{ cid: CID, size: number }> {
    const c = parseCid(root)
    const row = this.db.stmt('SELECT id FROM roots WHERE cid = ?').get(cidKey(c)) as { id: number } | undefined
    if (row != null) {
      const rows = this.db.stmt(`SELECT b.cid, b.size FROM root_blocks rb JOIN blocks b ON b.id = rb.block_id
        WHERE rb.root_id = ? ORDER BY b.id`).all(row.id) as Array<{ cid: Uint8Array, size: number }>
      for (const r of rows) yield { cid: cidFromKey(r.cid), size: r.size }
      return
    }
    const seen = new Set<string>()
    for await (const b of walkDag(x => { try { return this.ctx.blocks.tryGetSync(x) } catch { return undefined } }, c)) {
      const key = cidToString(b.cid)
      if (b.bytes == null || seen.has(key)) continue
      seen.add(key)
      yield { cid: b.cid, size: b.bytes.byteLength }
    }
  }

  async * exportCar (root: CidInput): AsyncGenerator<Uint8Array> {
    const c = parseCid(root)
    const { stat } = await this.read(c, { length: 0 })
    const end = beginRead(this.ctx, this.rootRow(c).id)
    try {
      yield * carStream(b => this.readBlock(b), stat.cid)
    } finally {
      end()
    }
  }

  // ---- pins ----------------------------------------------------------------

  async pin (cid: CidInput, options: PinOptions): Promise<Pin> {
    this.assertOpen()
    return pinSync(this.ctx, parseCid(cid), options)
  }

  async unpin (cid: CidInput, options: UnpinOptions = {}): Promise<number> {
    this.assertOpen()
    const n = unpinSync(this.ctx, parseCid(cid), options)
    this.gcRunner.kick()
    return n
  }

  async pins (filter: PinFilter = {}): Promise<Pin[]> {
    this.assertOpen()
    return listPins(this.ctx, filter)
  }

  // ---- accounting, GC, scrub, lifecycle --------------------------------------

  async usage (): Promise<StorageUsage> {
    const layers = {} as Record<Layer, LayerUsage>
    for (const l of LAYERS) {
      const u = usedBytes(this.ctx, l)
      layers[l] = { used_bytes: u.bytes, quota_bytes: this.ctx.quotas[l] ?? null, roots: u.roots }
    }
    const b = this.db.stmt(`SELECT COUNT(*) AS count, COALESCE(SUM(size), 0) AS bytes,
      COALESCE(SUM(refs <= 0), 0) AS unreferenced, COALESCE(SUM(quarantined_at IS NOT NULL), 0) AS quarantined FROM blocks`).get() as StorageUsage['blocks']
    const s = this.db.stmt('SELECT COUNT(*) AS n FROM temp_roots').get() as { n: number }
    const pageSize = this.db.db.pragma('page_size', { simple: true }) as number
    const pages = this.db.db.pragma('page_count', { simple: true }) as number
    const free = this.db.db.pragma('freelist_count', { simple: true }) as number
    return { layers, blocks: b, sessions: s.n, database: { file_bytes: pages * pageSize, free_bytes: free * pageSize, page_cache_dropped_bytes: this.db.droppedBytes } }
  }

  async gc (options: GcOptions = {}): Promise<GcResult> {
    this.assertOpen()
    return this.gcRunner.collect(options)
  }

  async scrub (options: ScrubOptions = {}): Promise<ScrubPassResult> {
    this.assertOpen()
    return this.scrubber.pass(options)
  }

  scrubStatus (): ScrubStatus {
    return this.scrubber.getStatus()
  }

  async start (): Promise<void> {
    this.assertOpen()
    this.gcRunner.start()
    this.scrubber.start()
    if (this.lruTimer == null) {
      this.lruTimer = setInterval(() => {
        // a timer's error would end the process: a full disk only delays the access times
        try { flushTouched(this.ctx) } catch (err: any) { this.ctx.log.warn({ err: err?.code ?? String(err) }, 'could not record blob access times') }
      }, LRU_FLUSH_INTERVAL_MS)
      this.lruTimer.unref?.()
    }
  }

  async stop (): Promise<void> {
    if (this.lruTimer != null) clearInterval(this.lruTimer)
    this.lruTimer = undefined
    await Promise.all([this.gcRunner.stop(), this.scrubber.stop()])
    if (this.ctx.db.open) {
      try { flushTouched(this.ctx) } catch (err: any) { this.ctx.log.warn({ err: err?.code ?? String(err) }, 'could not record blob access times') }
    }
  }

  async close (): Promise<void> {
    if (!this.ctx.db.open) return
    await this.stop()
    for (const s of [...this.sessions]) await s.release()
    this.sessions.clear()
    await this.ctx.db.close()
  }
}
