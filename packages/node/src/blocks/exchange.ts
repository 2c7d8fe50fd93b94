import { CID } from 'multiformats/cid'
import type { BlobStore, Session } from '@hearth/blobstore'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import { deviceOfPeer } from '../identity.js'
import { ProtocolError, encodeWithBytes, framed, isRecord } from '../p2p/framing.js'
import { peersSpeaking } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PenaltyBox } from '../p2p/penalty-box.js'
import type { TrustService } from '../trust/service.js'
import { mayServe } from './access.js'
import { RootAnnouncer } from './announcer.js'
import { DagFetcher } from './fetcher.js'
import { routingKey } from './routing-key.js'
import { BLOCKS_PROTOCOL, FRAME_BYTES, MAX_HAVE_LIST, MAX_WANT, MEMBERS_CACHED, MEMBERS_TTL_MS, NoProvidersError, TIMEOUT_MS } from './protocol.js'
import type { BlockExchangeStats, FetchOptions } from './protocol.js'

export { BLOCKS_PROTOCOL, FetchTimeoutError, NoProvidersError } from './protocol.js'
export type { BlockExchangeStats, FetchOptions } from './protocol.js'

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
  /** recently served roots' block sets, so each want does not list the root's blocks again */
  private readonly members = new Map<string, { at: number, cids: Set<string> }>()
  private readonly fetcher: DagFetcher
  private readonly announcer: RootAnnouncer

  constructor (components: { host: HearthHost, store: BlobStore, trust: TrustService, penalty: PenaltyBox, log: Logger }) {
    this.host = components.host
    this.store = components.store
    this.trust = components.trust
    this.penalty = components.penalty
    this.log = components.log
    this.fetcher = new DagFetcher({ host: this.host, store: this.store, penalty: this.penalty, stats: this.stats, log: this.log })
    this.announcer = new RootAnnouncer({ host: this.host, store: this.store, log: this.log })
  }

  async start (): Promise<void> {
    await this.host.handle(BLOCKS_PROTOCOL, (stream, conn) => { void this.serve(stream, conn) }, { maxInboundStreams: 32, maxOutboundStreams: 64 })
    this.announcer.start()
  }

  async stop (): Promise<void> {
    this.announcer.stop()
    await this.host.unhandle(BLOCKS_PROTOCOL).catch(() => {})
    for (const session of this.sessions.values()) await session.release().catch(() => {})
    this.sessions.clear()
  }

  private async serve (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS })
    try {
      const msg = await f.read()
      if (!isRecord(msg) || typeof msg.root !== 'string' || msg.root.length > 256) throw new ProtocolError('bad request')
      const device = deviceOfPeer(conn.remotePeer)
      let root: CID
      try { root = CID.parse(msg.root) } catch { throw new ProtocolError('bad root') }
      if (device == null || !await mayServe(this.store, this.trust, device, root.toString())) {
        this.stats.refused++
        await f.write({ type: 'refused' })
        await f.close()
        return
      }
      const members = await this.membersOf(root, msg.type === 'have')
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
            await f.writeEncoded(encodeWithBytes({ type: 'block', cid: c }, bytes))
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

  /** The blocks of `root` held here; from a short-lived cache unless `fresh`. */
  private async membersOf (root: CID, fresh: boolean): Promise<Set<string>> {
    const key = root.toString()
    const hit = this.members.get(key)
    if (!fresh && hit != null && Date.now() - hit.at < MEMBERS_TTL_MS) return hit.cids
    const cids = new Set<string>()
    for await (const b of this.store.blocksOf(root)) cids.add(b.cid.toString())
    // only a complete blob's set is stable enough to keep
    if (await this.store.has(root)) {
      this.members.delete(key)
      this.members.set(key, { at: Date.now(), cids })
      if (this.members.size > MEMBERS_CACHED) this.members.delete(this.members.keys().next().value!)
    }
    return cids
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

  /**
   * Fetches a whole DAG from providers into the store and registers it
   * (pinned in `layer`, default the `cache`). Each provider gets up to
   * PER_PEER_IN_FLIGHT wants of WANT_BATCH blocks at a time, pulled from one
   * queue, so a fast provider serves more; a provider that fails, sends
   * nothing or lacks blocks is dropped for this fetch. An interrupted fetch
   * keeps its session, so the next call for the same root asks only for
   * what is still missing.
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
    const s = session
    for (let attempt = 0; ; attempt++) {
      const missing = await s.missing(root)
      if (missing.length > 0) await this.fetcher.drain(root, s, providers, missing, options.signal)
      try {
        const result = await s.commit(root, { layer: options.layer ?? 'cache', ...(options.owner != null ? { owner: options.owner } : {}) })
        this.sessions.delete(key)
        this.announce(root)
        return { cid: result.cid.toString(), size: result.size, blocks: result.blocks }
      } catch (err: any) {
        // a block we took for held went away before the commit (GC): look again, a few times
        if (err?.code !== 'ERR_INCOMPLETE_DAG' || attempt >= 3) throw err
      }
    }
  }

  /** Connected peers first; then whoever the DHT says provides the root (a few, briefly). */
  async findProviders (root: CID, signal?: AbortSignal): Promise<PeerId[]> {
    const connected = await this.connectedProviders(root)
    return connected.length > 0 ? connected : await this.dhtProviders(root, signal)
  }

  /**
   * Connected peers that say they hold blocks of `root` (and let us read it);
   * a peer connected a moment ago is asked before its identify completes.
   */
  async connectedProviders (root: CID): Promise<PeerId[]> {
    const connected = await peersSpeaking(this.host, BLOCKS_PROTOCOL, { unidentified: true })
    const answers = await Promise.allSettled(connected.map(async p => ({ p, held: await this.have(p, root, AbortSignal.timeout(3000)) })))
    return answers.flatMap(a => a.status === 'fulfilled' && (a.value.held?.cids.length ?? 0) > 0 ? [a.value.p] : [])
  }

  /** Providers of `root` the private DHT knows of, their addresses remembered for dialling (at most 8, within 5 s). */
  async dhtProviders (root: CID, signal?: AbortSignal): Promise<PeerId[]> {
    const found = new Map<string, PeerId>()
    try {
      const ask = AbortSignal.any([AbortSignal.timeout(5000), ...(signal != null ? [signal] : [])])
      for await (const provider of this.host.contentRouting.findProviders(routingKey(root), { signal: ask })) {
        if (provider.id.equals(this.host.peerId)) continue
        if (provider.multiaddrs.length > 0) await this.host.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => {})
        found.set(provider.id.toString(), provider.id)
        if (found.size >= 8) break
      }
    } catch { /* no DHT answer in time: use what we have */ }
    return [...found.values()]
  }

  /** Tells the private DHT this node provides `root` (roots only, never every block); pinned roots are announced again later too. */
  announce (root: CID | string): void {
    void this.announcer.announce(typeof root === 'string' ? CID.parse(root) : root)
  }

  /** Roots announced on the DHT since start. */
  get announced (): number { return this.announcer.announced }
}
