import { CID } from 'multiformats/cid'
import { keyIdFromPublicKey } from '@hearth/trust'
import type { BlobStore, Layer, Session } from '@hearth/blobstore'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import { ProtocolError, framed, isRecord } from '../p2p/framing.js'
import { peersSpeaking } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PenaltyBox } from '../p2p/penalty-box.js'
import type { TrustService } from '../trust/service.js'
import { mayServe } from './access.js'

export const BLOCKS_PROTOCOL = '/hearth/blocks/1.0.0'

const TIMEOUT_MS = 15_000
/** a block is at most 2 MiB; a frame carries one block or one list */
const FRAME_BYTES = 2 * 1024 * 1024 + 4096
/** CIDs asked for in one want */
const MAX_WANT = 64
/** block CIDs listed in one `have` answer */
const MAX_HAVE_LIST = 16_384
/** concurrent wants to one provider */
const PER_PEER_IN_FLIGHT = 2

export class FetchTimeoutError extends Error {
  static readonly code = 'ERR_FETCH_TIMEOUT'
  readonly code = FetchTimeoutError.code
  override readonly name = 'FetchTimeoutError'
}

export class NoProvidersError extends Error {
  static readonly code = 'ERR_NO_PROVIDERS'
  readonly code = NoProvidersError.code
  override readonly name = 'NoProvidersError'
}

export interface FetchOptions {
  layer?: Layer
  owner?: string
  signal?: AbortSignal
  /** peers to ask; default: connected peers that speak the protocol, then DHT providers */
  providers?: PeerId[]
}

export interface BlockExchangeStats {
  blocksSent: number
  blocksReceived: number
  bytesReceived: number
  refused: number
  corrupt: number
}

/**
 * Moves blocks between daemons. A peer asks for blocks of a root it may
 * read (`want`), or which blocks of a root we hold (`have`); every block that
 * arrives is hash-checked by the store before it is kept, and a peer that
 * sends a corrupt one is struck. A fetch spreads its wants over every
 * provider with bounded requests in flight, and a fetch of a root that was
 * interrupted resumes from the blocks already held.
 */
export class BlockExchange {
  readonly stats: BlockExchangeStats = { blocksSent: 0, blocksReceived: 0, bytesReceived: 0, refused: 0, corrupt: 0 }
  private readonly host: HearthHost
  private readonly store: BlobStore
  private readonly trust: TrustService
  private readonly penalty: PenaltyBox
  private readonly log: Logger
  /** unfinished downloads by root, so a retry resumes them */
  private readonly sessions = new Map<string, Session>()

  constructor (components: { host: HearthHost, store: BlobStore, trust: TrustService, penalty: PenaltyBox, log: Logger }) {
    this.host = components.host
    this.store = components.store
    this.trust = components.trust
    this.penalty = components.penalty
    this.log = components.log
  }

  async start (): Promise<void> {
    await this.host.handle(BLOCKS_PROTOCOL, (stream, conn) => { void this.serve(stream, conn) }, { maxInboundStreams: 32, maxOutboundStreams: 64 })
  }

  async stop (): Promise<void> {
    await this.host.unhandle(BLOCKS_PROTOCOL).catch(() => {})
    for (const session of this.sessions.values()) await session.release().catch(() => {})
    this.sessions.clear()
  }

  private peerDevice (conn: Connection): string | undefined {
    const raw = conn.remotePeer.publicKey?.raw
    return raw != null && raw.length === 32 ? keyIdFromPublicKey(raw) : undefined
  }

  private async serve (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS })
    try {
      const msg = await f.read()
      if (!isRecord(msg) || typeof msg.root !== 'string' || msg.root.length > 256) throw new ProtocolError('bad request')
      const device = this.peerDevice(conn)
      let root: CID
      try { root = CID.parse(msg.root) } catch { throw new ProtocolError('bad root') }
      if (device == null || !await mayServe(this.store, this.trust, device, root.toString())) {
        this.stats.refused++
        await f.write({ type: 'refused' })
        await f.close()
        return
      }
      const members = new Set<string>()
      for await (const b of this.store.blocksOf(root)) members.add(b.cid.toString())
      if (msg.type === 'have') {
        const list = [...members].slice(0, MAX_HAVE_LIST)
        await f.write({ type: 'have', cids: list, complete: await this.store.has(root), truncated: members.size > list.length })
      } else if (msg.type === 'want') {
        if (!Array.isArray(msg.cids) || msg.cids.length > MAX_WANT) throw new ProtocolError(`want lists 1 to ${MAX_WANT} CIDs`)
        const missing: string[] = []
        for (const c of msg.cids) {
          if (typeof c !== 'string' || !members.has(c)) { if (typeof c === 'string') missing.push(c.slice(0, 128)); continue }
          try {
            const bytes = await this.store.getBlock(c)
            await f.write({ type: 'block', cid: c, bytes })
            this.stats.blocksSent++
          } catch {
            missing.push(c)
          }
        }
        if (missing.length > 0) await f.write({ type: 'dont-have', cids: missing })
        await f.write({ type: 'end' })
      } else {
        throw new ProtocolError('unknown request')
      }
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.penalty.strike(peer, err.message)
      f.abort(err?.message ?? 'error')
    }
  }

  /** Which blocks of `root` a peer holds (and whether it holds all of it). */
  async have (peer: PeerId, root: CID, signal?: AbortSignal): Promise<{ cids: string[], complete: boolean } | undefined> {
    const stream = await this.host.dialProtocol(peer, BLOCKS_PROTOCOL, { signal: signal ?? AbortSignal.timeout(TIMEOUT_MS) })
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS })
    try {
      await f.write({ type: 'have', root: root.toString() })
      const reply = await f.read()
      await f.close()
      if (!isRecord(reply) || reply.type !== 'have' || !Array.isArray(reply.cids)) return undefined
      return { cids: reply.cids.filter((c): c is string => typeof c === 'string'), complete: reply.complete === true }
    } catch (err) {
      f.abort('have failed')
      throw err
    }
  }

  private async want (peer: PeerId, root: CID, cids: CID[], session: Session): Promise<number> {
    const stream = await this.host.dialProtocol(peer, BLOCKS_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS })
    const asked = new Set(cids.map(c => c.toString()))
    let got = 0
    try {
      await f.write({ type: 'want', root: root.toString(), cids: [...asked] })
      for (;;) {
        const msg = await f.read()
        if (!isRecord(msg)) throw new ProtocolError('bad reply')
        if (msg.type === 'end' || msg.type === 'refused') break
        if (msg.type === 'dont-have') continue
        if (msg.type !== 'block' || typeof msg.cid !== 'string' || !asked.has(msg.cid) || !(msg.bytes instanceof Uint8Array)) throw new ProtocolError('unasked or malformed block')
        asked.delete(msg.cid)
        try {
          await session.putBlock(msg.cid, msg.bytes)
        } catch (err: any) {
          if (err?.code === 'ERR_BLOCK_VERIFICATION') {
            this.stats.corrupt++
            this.penalty.strike(peer.toString(), 'sent a corrupt block', 5)
            throw new ProtocolError('corrupt block')
          }
          throw err
        }
        got++
        this.stats.blocksReceived++
        this.stats.bytesReceived += msg.bytes.length
      }
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.penalty.strike(peer.toString(), err.message)
      f.abort(err?.message ?? 'error')
      throw err
    }
    return got
  }

  /**
   * Fetches a whole DAG from providers into the store and registers it
   * (pinned in `layer`, default the `cache`). Wants are spread over the
   * providers, at most PER_PEER_IN_FLIGHT each; a provider that fails is
   * dropped for this fetch. An interrupted fetch keeps its session, so the
   * next call for the same root asks only for what is still missing.
   */
  async fetch (rootInput: CID | string, options: FetchOptions = {}): Promise<{ cid: string, size: number, blocks: number }> {
    const root = typeof rootInput === 'string' ? CID.parse(rootInput) : rootInput
    const key = root.toString()
    let session = this.sessions.get(key)
    if (session == null) {
      session = await this.store.session()
      this.sessions.set(key, session)
    }
    const providers = [...(options.providers ?? await this.findProviders(root, options.signal))]
    if (providers.length === 0) throw new NoProvidersError(`no peer to fetch ${key} from`)
    const failed = new Set<string>()
    let turn = 0
    for (;;) {
      if (options.signal?.aborted === true) throw new FetchTimeoutError(`fetching ${key} took too long`)
      const missing = await session.missing(root)
      if (missing.length === 0) break
      const live = providers.filter(p => !failed.has(p.toString()))
      if (live.length === 0) throw new NoProvidersError(`no provider could serve the rest of ${key} (${missing.length} blocks missing)`)
      // one round: up to PER_PEER_IN_FLIGHT wants per live provider, disjoint batches
      const batches: Array<{ peer: PeerId, cids: CID[] }> = []
      for (let i = 0; i < missing.length && batches.length < live.length * PER_PEER_IN_FLIGHT; i += MAX_WANT / 4) {
        batches.push({ peer: live[turn++ % live.length], cids: missing.slice(i, i + MAX_WANT / 4) })
      }
      const results = await Promise.allSettled(batches.map(async b => await this.want(b.peer, root, b.cids, session)))
      let progress = 0
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') progress += r.value
        else { failed.add(batches[i].peer.toString()); this.log.debug({ peer: batches[i].peer.toString(), err: r.reason?.message }, 'provider failed') }
      })
      if (progress === 0) {
        // nobody had anything we asked for: those providers cannot complete this DAG
        for (const b of batches) failed.add(b.peer.toString())
      }
    }
    const result = await session.commit(root, { layer: options.layer ?? 'cache', ...(options.owner != null ? { owner: options.owner } : {}) })
    this.sessions.delete(key)
    this.announce(root)
    return { cid: result.cid.toString(), size: result.size, blocks: result.blocks }
  }

  /** Connected peers first; then whoever the DHT says provides the root (a few, briefly). */
  async findProviders (root: CID, signal?: AbortSignal): Promise<PeerId[]> {
    const found = new Map<string, PeerId>()
    const connected = await peersSpeaking(this.host, BLOCKS_PROTOCOL)
    const answers = await Promise.allSettled(connected.map(async p => ({ p, held: await this.have(p, root, AbortSignal.timeout(3000)) })))
    for (const a of answers) if (a.status === 'fulfilled' && (a.value.held?.cids.length ?? 0) > 0) found.set(a.value.p.toString(), a.value.p)
    if (found.size === 0) {
      try {
        const ask = AbortSignal.any([AbortSignal.timeout(5000), ...(signal != null ? [signal] : [])])
        for await (const provider of this.host.contentRouting.findProviders(root, { signal: ask })) {
          if (provider.id.equals(this.host.peerId)) continue
          if (provider.multiaddrs.length > 0) await this.host.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => {})
          found.set(provider.id.toString(), provider.id)
          if (found.size >= 8) break
        }
      } catch { /* no DHT answer in time: use what we have */ }
    }
    return [...found.values()]
  }

  /** Tells the private DHT this node provides `root` (roots only, never every block). */
  announce (root: CID | string): void {
    const cid = typeof root === 'string' ? CID.parse(root) : root
    this.host.contentRouting.provide(cid, { signal: AbortSignal.timeout(60_000) }).catch(err => {
      this.log.debug({ root: cid.toString(), err: err?.message }, 'could not announce root')
    })
  }
}
