import { InvalidDagError, MAX_BLOCK_SIZE, checkIncomingBlock, decodeFileNode } from '@hearth/blobstore'
import type { Session } from '@hearth/blobstore'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import { DAG_PB, FetchTimeoutError, NoProvidersError, PER_PEER_IN_FLIGHT, RAW_CODE, WANT_BATCH } from './protocol.js'
import { want } from './want.js'
import type { WantComponents } from './want.js'

/** Blocks a read keeps ahead of its reader, fetched or on their way: with 1 MiB leaves, what it may hold in memory */
export const READ_AHEAD_BLOCKS = 32
const MAX_DEPTH = 32

export interface RemoteReadOptions {
  /** the read fails with FetchTimeoutError when peers sent nothing for this long while it waited for them */
  idleTimeoutMs: number
  /** aborts the read (the client went away) */
  signal?: AbortSignal
  log: Logger
}

interface Entry {
  cid: CID
  /** file offset where this block's part of the file begins */
  start: number
  /** what its parent declares: a leaf's length, a node's file size */
  expected?: number
  depth: number
  state: 'planned' | 'asked' | 'arrived'
  bytes?: Uint8Array
  waiters: Array<{ resolve: (b: Uint8Array) => void, reject: (err: Error) => void }>
}

/**
 * A blob this node lacks, read from peers as it downloads. The blocks a
 * range needs — the root, the nodes on its path, the leaves it covers — are
 * planned in file order as each node arrives (its blocksizes say which
 * children the range touches), and asked for a window ahead of the reader
 * over every provider, PER_PEER_IN_FLIGHT wants of WANT_BATCH each. Each
 * block is verified against its CID before anything of it is used, and each
 * leaf and node must have the size its parent declares; bytes go out in
 * order as soon as they are verified. Memory stays at the window.
 *
 * `keep`, a session of the store, also stores every block as it arrives
 * (the read can then be committed as a blob); a store that refuses one (its
 * quota) only stops the keeping, not the read.
 */
export class RemoteRead {
  readonly root: CID
  private readonly providers: PeerId[]
  private readonly inFlight = new Map<string, number>()
  private plan: Entry[] = []
  private head = 0
  private failure?: Error
  private closed = false
  private completed = false
  private timer?: ReturnType<typeof setTimeout>
  private asked = 0
  private keep?: Session
  private rootEntry: Entry
  /** blocks that arrived from peers for this read */
  received = 0

  constructor (private readonly c: WantComponents, root: CID, providers: PeerId[], private readonly opts: RemoteReadOptions) {
    this.root = root
    this.providers = [...providers]
    this.rootEntry = { cid: root, start: 0, depth: 0, state: 'planned', waiters: [] }
    opts.signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  private readonly onAbort = (): void => {
    const reason = this.opts.signal?.reason
    this.fail(reason instanceof Error ? reason : new Error('aborted'))
  }

  /** Fetches the root; resolves with the file's size. */
  async open (): Promise<number> {
    if (this.providers.length === 0) throw new NoProvidersError(`no peer to read ${this.root.toString()} from`)
    this.plan = [this.rootEntry]
    this.pump()
    const bytes = await this.arrival(this.rootEntry)
    return this.root.code === RAW_CODE ? bytes.byteLength : decodeFileNode(bytes).fileSize
  }

  /**
   * The bytes `[offset, offset + length)`, in order, as they arrive. With
   * `keep`, every block is also stored in that session; the caller commits
   * or releases it.
   */
  async * read (offset: number, length: number, keep?: Session): AsyncGenerator<Uint8Array> {
    const end = offset + length
    this.keep = keep
    if (keep != null && this.rootEntry.bytes != null) await this.store(this.rootEntry.cid, this.rootEntry.bytes)
    this.plan = [this.rootEntry]
    this.head = 0
    this.range = { offset, end }
    this.expand(this.rootEntry)
    let produced = 0
    try {
      while (this.head < this.plan.length) {
        const e = this.plan[this.head]
        this.pump()
        const bytes = await this.arrival(e)
        this.head++
        e.bytes = undefined
        if (e.cid.code === RAW_CODE) {
          if (e.expected !== undefined && bytes.byteLength !== e.expected) throw new InvalidDagError('leaf size disagrees with its parent')
          const from = Math.max(offset - e.start, 0)
          const to = Math.min(end - e.start, bytes.byteLength)
          if (to > from) { produced += to - from; yield bytes.subarray(from, to) }
        } else {
          const data = decodeFileNode(bytes).data
          if (data != null && data.byteLength > 0) {
            const from = Math.max(offset - e.start, 0)
            const to = Math.min(end - e.start, data.byteLength)
            if (to > from) { produced += to - from; yield data.subarray(from, to) }
          }
        }
      }
      if (produced !== length) throw new InvalidDagError(`DAG yielded ${produced} bytes where ${length} were expected`)
      this.completed = true
    } finally {
      this.close()
    }
  }

  /** Whether the read finished and every block of it was stored in `keep` (it can be committed). */
  get kept (): boolean { return this.keep != null && this.completed }

  private range = { offset: 0, end: 0 }

  /** Plans the children of a node that the range touches, right after it (file order). */
  private expand (e: Entry): void {
    if (e.cid.code !== DAG_PB || e.bytes == null) return
    if (e.depth >= MAX_DEPTH) throw new InvalidDagError('DAG too deep')
    const node = decodeFileNode(e.bytes)
    if (e.expected !== undefined && node.fileSize !== e.expected) throw new InvalidDagError('node size disagrees with its parent')
    const declared = (node.data?.byteLength ?? 0) + node.blockSizes.reduce((a, b) => a + b, 0)
    if (declared !== node.fileSize) throw new InvalidDagError('node file size disagrees with its blocksizes')
    const children: Entry[] = []
    let pos = e.start + (node.data?.byteLength ?? 0)
    node.links.forEach((cid, i) => {
      const size = node.blockSizes[i]
      if (pos < this.range.end && pos + size > this.range.offset) children.push({ cid, start: pos, expected: size, depth: e.depth + 1, state: 'planned', waiters: [] })
      pos += size
    })
    const at = this.plan.indexOf(e, this.head)
    if (at >= 0) this.plan.splice(at + 1, 0, ...children)
  }

  private async arrival (e: Entry): Promise<Uint8Array> {
    if (this.failure != null) throw this.failure
    if (e.bytes != null) return e.bytes
    return await new Promise<Uint8Array>((resolve, reject) => { e.waiters.push({ resolve, reject }) })
  }

  /** Asks for the planned blocks in the window, over every provider with room. */
  private pump (): void {
    if (this.failure != null || this.closed) return
    const window = this.plan.slice(this.head, this.head + READ_AHEAD_BLOCKS).filter(e => e.state === 'planned')
    for (const peer of this.providers) {
      const key = peer.toString()
      while (window.length > 0 && (this.inFlight.get(key) ?? 0) < PER_PEER_IN_FLIGHT) {
        const batch = window.splice(0, WANT_BATCH)
        for (const e of batch) e.state = 'asked'
        void this.ask(peer, batch)
      }
    }
    if (this.providers.length === 0 && this.plan.slice(this.head).some(e => e.state !== 'arrived')) {
      this.fail(new NoProvidersError(`no provider could serve the rest of ${this.root.toString()}`))
    }
  }

  private async ask (peer: PeerId, batch: Entry[]): Promise<void> {
    const key = peer.toString()
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1)
    this.asked += batch.length
    this.watch()
    const byCid = new Map(batch.map(e => [e.cid.toString(), e]))
    let drop = false
    try {
      const r = await want(this.c, peer, this.root, batch.map(e => e.cid), async (cid, bytes) => {
        if (this.failure != null || this.closed) throw this.failure ?? new Error('read closed')
        await this.accept(byCid.get(cid.toString())!, bytes)
      })
      drop = r.lacking || r.unreceived.length === batch.length
    } catch (err: any) {
      if (this.failure == null && !this.closed) this.opts.log.debug({ peer: key, root: this.root.toString(), err: err?.message }, 'provider failed during a read')
      drop = true
    } finally {
      for (const e of batch) {
        if (e.state !== 'asked') continue
        e.state = 'planned'
        this.asked--
      }
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1)
      if (drop) { const i = this.providers.findIndex(p => p.equals(peer)); if (i >= 0) this.providers.splice(i, 1) }
      this.watch()
      this.pump()
    }
  }

  private async accept (e: Entry, bytes: Uint8Array): Promise<void> {
    if (this.keep != null) await this.store(e.cid, bytes) // the session verifies as it stores
    else checkIncomingBlock(e.cid, bytes, MAX_BLOCK_SIZE)
    e.bytes = bytes
    e.state = 'arrived'
    this.asked--
    this.received++
    this.watch(true)
    try {
      this.expand(e)
    } catch (err: any) {
      this.fail(err)
      return
    }
    for (const w of e.waiters.splice(0)) w.resolve(bytes)
  }

  /** Stores a verified block in the keeping session; a refusal (its quota) ends the keeping, not the read. */
  private async store (cid: CID, bytes: Uint8Array): Promise<void> {
    const keep = this.keep
    if (keep == null) { checkIncomingBlock(cid, bytes, MAX_BLOCK_SIZE); return }
    try {
      await keep.putBlock(cid, bytes)
    } catch (err: any) {
      if (err?.code === 'ERR_BLOCK_VERIFICATION' || err?.code === 'ERR_BLOCK_TOO_LARGE') throw Object.assign(err, { code: 'ERR_BLOCK_VERIFICATION' })
      this.opts.log.info({ root: this.root.toString(), err: err?.code ?? err?.message }, 'a read-through stops keeping what it reads')
      this.keep = undefined
      await keep.release().catch(() => {})
      checkIncomingBlock(cid, bytes, MAX_BLOCK_SIZE)
    }
  }

  /** The silence timer runs only while blocks are asked for and none arrives. */
  private watch (arrived = false): void {
    if (this.asked <= 0 || this.failure != null || this.closed) { clearTimeout(this.timer); this.timer = undefined; return }
    if (this.timer != null && !arrived) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.fail(new FetchTimeoutError(`no peer sent a block of ${this.root.toString()} for ${this.opts.idleTimeoutMs} ms`)) }, this.opts.idleTimeoutMs)
  }

  private fail (err: Error): void {
    if (this.failure != null) return
    this.failure = err
    clearTimeout(this.timer)
    for (const e of this.plan) for (const w of e.waiters.splice(0)) w.reject(err)
    for (const w of this.rootEntry.waiters.splice(0)) w.reject(err)
  }

  /** Stops asking; blocks in flight are dropped as they come. */
  close (): void {
    this.opts.signal?.removeEventListener('abort', this.onAbort)
    this.closed = true
    clearTimeout(this.timer)
  }
}
