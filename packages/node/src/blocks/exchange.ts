import { LRUCache } from 'lru-cache'
import { CID } from 'multiformats/cid'
import { checkContentType, estimateDagBytes, fileSizeOf } from '@hearth/blobstore'
import type { BlobStore, Session } from '@hearth/blobstore'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import { deviceOfPeer } from '../identity.js'
import { ProtocolError, encodeWithBytes, framed, isRecord } from '../p2p/framing.js'
import { peersSpeaking, openStream } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import type { TrustService } from '../trust/service.js'
import { mayServe } from './access.js'
import { RootAnnouncer } from './announcer.js'
import { DagFetcher } from './fetcher.js'
import { RemoteRead } from './remote-read.js'
import { RAW_CODE, relayCarries } from './protocol.js'
import { isRelayed } from '../status.js'
import { routingKey } from './routing-key.js'
import { BLOCKS_PROTOCOL, FRAME_BYTES, FetchTimeoutError, MAX_HAVE_LIST, MAX_WANT, MEMBERS_CACHED, MEMBERS_TTL_MS, NoProvidersError, RelayLimitError, REQUEST_FRAME_BYTES, RESUMABLE_SESSIONS, TIMEOUT_MS } from './protocol.js'
import type { BlockExchangeStats, FetchOptions, RelayTransfers } from './protocol.js'

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
  private readonly policy: PeerPolicy
  private readonly log: Logger
  /** unfinished downloads by root, so a retry resumes them */
  private readonly sessions = new Map<string, Session>()
  /** recently served roots' block sets, so each want does not list the root's blocks again */
  private readonly members = new LRUCache<string, Set<string>>({ max: MEMBERS_CACHED, ttl: MEMBERS_TTL_MS })
  private readonly fetcher: DagFetcher
  /** blocks may use relayed connections (HEARTH_RELAY_TRANSFERS=limited) */
  private readonly overRelays: boolean
  private readonly announcer: RootAnnouncer

  private readonly relayTransfers: RelayTransfers

  constructor (components: { host: HearthHost, store: BlobStore, trust: TrustService, policy: PeerPolicy, log: Logger, relayTransfers?: RelayTransfers }) {
    this.host = components.host
    this.store = components.store
    this.trust = components.trust
    this.policy = components.policy
    this.log = components.log
    this.relayTransfers = components.relayTransfers ?? 'limited'
    this.overRelays = this.relayTransfers !== 'never'
    this.fetcher = new DagFetcher({ host: this.host, store: this.store, policy: this.policy, stats: this.stats, log: this.log, overRelays: this.overRelays })
    this.announcer = new RootAnnouncer({ host: this.host, store: this.store, log: this.log })
  }

  async start (): Promise<void> {
    // strangers may fetch gift blocks, over a few streams between them all
    await this.policy.handle(BLOCKS_PROTOCOL, (stream, conn) => { void this.serve(stream, conn) }, { maxInboundStreams: 32, maxOutboundStreams: 64, runOnLimitedConnection: this.overRelays, strangers: { maxStreams: 8 } })
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
    // what arrives here is a request: a want list at most
    const f = framed(stream, { maxBytes: REQUEST_FRAME_BYTES, timeoutMs: TIMEOUT_MS, guard: this.policy.guard(peer) })
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
        const head = await this.store.head(root).catch(() => undefined)
        await f.write({ type: 'have', cids: list, complete: head != null, truncated: members.size > list.length, ...(head?.contentType != null ? { content_type: head.contentType } : {}) })
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
      if (err instanceof ProtocolError) this.policy.offence(peer, err.message)
      f.abort(err?.message ?? 'error')
    }
  }

  /** The blocks of `root` held here; from a short-lived cache unless `fresh`. */
  private async membersOf (root: CID, fresh: boolean): Promise<Set<string>> {
    const key = root.toString()
    const hit = fresh ? undefined : this.members.get(key)
    if (hit !== undefined) return hit
    const cids = new Set<string>()
    for await (const b of this.store.blocksOf(root)) cids.add(b.cid.toString())
    // only a complete blob's set is stable enough to keep
    if (await this.store.has(root)) {
      this.members.set(key, cids)
    }
    return cids
  }

  /** Which blocks of `root` a peer holds (whether it holds all of it, and the type it serves it with). */
  async have (peer: PeerId, root: CID, signal?: AbortSignal): Promise<{ cids: string[], complete: boolean, contentType?: string } | undefined> {
    const stream = await openStream(this.host, peer, BLOCKS_PROTOCOL, { signal: signal ?? AbortSignal.timeout(TIMEOUT_MS), runOnLimitedConnection: this.overRelays })
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS, guard: this.policy.guard(peer, { asked: true }) })
    try {
      await f.write({ type: 'have', root: root.toString() })
      const reply = await f.read()
      await f.close()
      if (!isRecord(reply) || reply.type !== 'have' || !Array.isArray(reply.cids)) return undefined
      return { cids: reply.cids.filter((c): c is string => typeof c === 'string'), complete: reply.complete === true, ...(validType(reply.content_type) ? { contentType: reply.content_type } : {}) }
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
   * nothing or lacks blocks is dropped for this fetch.
   *
   * The download counts toward its layer while it runs: the root's declared
   * size is checked against the layer's quota as soon as the root arrives,
   * and the stored bytes every 16 MiB, so a blob that cannot fit fails with
   * QuotaExceededError early and its blocks are deleted. A fetch interrupted
   * otherwise keeps its session (at most RESUMABLE_SESSIONS, oldest released
   * first), so the next call for the same root asks only for what is missing.
   */
  async fetch (rootInput: CID | string, options: FetchOptions = {}): Promise<{ cid: string, size: number, blocks: number }> {
    const root = typeof rootInput === 'string' ? CID.parse(rootInput) : rootInput
    const layer = options.layer ?? 'cache'
    const key = `${root.toString()} ${layer}`
    let session = this.sessions.get(key)
    if (session == null) {
      session = await this.store.session({ layer })
      this.sessions.set(key, session)
      for (const [k, s] of this.sessions) {
        if (this.sessions.size <= RESUMABLE_SESSIONS) break
        this.sessions.delete(k)
        await s.release().catch(() => {})
      }
    }
    const s = session
    const idle = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const touch = (): void => {
      if (options.idleTimeoutMs == null) return
      clearTimeout(timer)
      timer = setTimeout(() => { idle.abort(new FetchTimeoutError(`no peer sent a block of ${root.toString()} for ${options.idleTimeoutMs} ms`)) }, options.idleTimeoutMs)
    }
    const signal = AbortSignal.any([idle.signal, ...(options.signal != null ? [options.signal] : [])])
    let received = 0
    let total: number | undefined
    const onBlock = (cid: CID, bytes: Uint8Array): void => {
      touch()
      if (cid.equals(root)) {
        total = fileSizeOf(root, bytes)
        // refused before the rest is downloaded when it cannot fit
        s.expect(Math.max(0, estimateDagBytes(total) - s.newBytes))
      }
      if (cid.code === RAW_CODE) received += bytes.byteLength
      options.onProgress?.(received, total)
    }
    try {
      touch()
      const found = [...(options.providers ?? await this.findProviders(root, signal))]
      if (this.relayTransfers === 'limited' && options.size != null) {
        // which path a provider is on decides whether it may carry this blob: connect to those found through the DHT first
        await Promise.all(found.filter(p => this.host.getConnections(p).length === 0).map(async p => {
          await this.host.dial(p, { signal: AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), ...(signal != null ? [signal] : [])]) }).catch(() => {})
        }))
      }
      const providers = found.filter(p => this.mayCarry(p, options.size))
      if (providers.length === 0 && found.length > 0) {
        throw new RelayLimitError(`${root.toString()} (${String(options.size)} bytes) is offered only through relays whose limit is smaller; waiting for a direct connection (HEARTH_RELAY_TRANSFERS=allow sends it anyway)`)
      }
      if (providers.length === 0) throw new NoProvidersError(`no peer to fetch ${root.toString()} from`)
      for (let attempt = 0; ; attempt++) {
        const missing = await s.missing(root)
        if (missing.length > 0) await this.fetcher.drain(root, s, providers, missing, signal, onBlock)
        try {
          const result = await s.commit(root, { layer, ...(options.owner != null ? { owner: options.owner } : {}), ...(options.contentType != null ? { contentType: options.contentType } : {}) })
          this.sessions.delete(key)
          if (layer !== 'cache') this.announce(root)
          return { cid: result.cid.toString(), size: result.size, blocks: result.blocks }
        } catch (err: any) {
          // a block we took for held went away before the commit (GC): look again, a few times
          if (err?.code !== 'ERR_INCOMPLETE_DAG' || attempt >= 3) throw err
        }
      }
    } catch (err: any) {
      // a download that cannot fit, or a DAG that is not one, is not worth resuming
      if (err?.code === 'ERR_QUOTA_EXCEEDED' || err?.code === 'ERR_INVALID_DAG' || err?.code === 'ERR_UNSUPPORTED_CODEC') {
        this.sessions.delete(key)
        await s.release().catch(() => {})
      }
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /** Whether a blob of `size` may come from `peer` over the best connection open to it (any, when none is open: a dial will tell) */
  private mayCarry (peer: PeerId, size: number | undefined): boolean {
    const open = this.host.getConnections(peer).filter(c => c.status === 'open')
    if (open.length === 0) return true
    return open.some(c => relayCarries(this.relayTransfers, c, size, isRelayed(c)))
  }

  /** Connected peers first; then whoever the DHT says provides the root (a few, briefly). */
  async findProviders (root: CID, signal?: AbortSignal): Promise<PeerId[]> {
    return (await this.providerInfo(root, signal)).providers
  }

  /** Providers as findProviders finds them, with the content type a connected one that holds the whole blob serves it with. */
  async providerInfo (root: CID, signal?: AbortSignal): Promise<{ providers: PeerId[], contentType?: string }> {
    const connected = await this.connectedAnswers(root)
    if (connected.length === 0) return { providers: await this.dhtProviders(root, signal) }
    // peers that hold all of it first: a partial holder serves only part
    connected.sort((a, b) => Number(b.held.complete) - Number(a.held.complete))
    const type = connected.find(a => a.held.contentType != null)?.held.contentType
    return { providers: connected.map(a => a.p), ...(type != null ? { contentType: type } : {}) }
  }

  /**
   * Connected peers that say they hold blocks of `root` (and let us read it);
   * a peer connected a moment ago is asked before its identify completes.
   */
  async connectedProviders (root: CID): Promise<PeerId[]> {
    return (await this.connectedAnswers(root)).map(a => a.p)
  }

  private async connectedAnswers (root: CID): Promise<Array<{ p: PeerId, held: { cids: string[], complete: boolean, contentType?: string } }>> {
    const connected = await peersSpeaking(this.host, BLOCKS_PROTOCOL, { unidentified: true })
    const answers = await Promise.allSettled(connected.map(async p => ({ p, held: await this.have(p, root, AbortSignal.timeout(3000)) })))
    return answers.flatMap(a => a.status === 'fulfilled' && a.value.held != null && a.value.held.cids.length > 0 ? [{ p: a.value.p, held: a.value.held }] : [])
  }

  /**
   * Opens a blob this node lacks for reading as it downloads (see
   * RemoteRead): finds providers, fetches and checks the root, and answers
   * the file's size and the type a provider serves it with.
   */
  async openRead (root: CID, options: { idleTimeoutMs: number, signal?: AbortSignal }): Promise<{ reader: RemoteRead, size: number, contentType?: string }> {
    const { providers, contentType } = await this.providerInfo(root, options.signal)
    if (providers.length === 0) throw new NoProvidersError(`no peer to fetch ${root.toString()} from`)
    const reader = new RemoteRead({ host: this.host, policy: this.policy, stats: this.stats, overRelays: this.overRelays }, root, providers, { ...options, log: this.log })
    try {
      const size = await reader.open()
      return { reader, size, ...(contentType != null ? { contentType } : {}) }
    } catch (err) {
      reader.close()
      throw err
    }
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

function validType (v: unknown): v is string {
  try {
    return typeof v === 'string' && checkContentType(v) != null
  } catch {
    return false
  }
}
