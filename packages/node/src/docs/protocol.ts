import { keyIdFromPublicKey } from '@hearth/trust'
import type { Logger } from '@hearth/trust'
import { KEEP_ALIVE } from '@libp2p/interface'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peersSpeaking, openStream } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import type { TrustService } from '../trust/service.js'
import type { DocumentService, OpenDocuments } from './service.js'
import { streamChannel } from './stream-channel.js'
import { Sharing } from './sharing.js'
import type { SessionEntry } from './sharing.js'

export const SYNC_PROTOCOL = '/hearth/sync/1.0.0'
/** peers this node syncs documents with are redialled by libp2p when their connection drops */
export const SYNC_KEEP_ALIVE_TAG = `${KEEP_ALIVE}-hearth-sync`

/** a frame is one wire message (capped at 8 MiB by the engine) plus its framing */
const MAX_FRAME_BYTES = 8 * 1024 * 1024 + 64 * 1024
const KEEPALIVE_MS = 30_000
/** the peer with the larger id waits this long for the smaller one to open the session */
const YIELD_MS = 250
const REOPEN_MIN_MS = 1000
const REOPEN_MAX_MS = 60_000


export interface SyncSessionView {
  peer_id: string
  device: string
  agent: string | null
  initiator: 'self' | 'peer'
  opened_at: string
  subscribed: number
  peer_subscribed: number
  pending: number
  in_flight: number
  sent_messages: number
  sent_bytes: number
  received_messages: number
  received_bytes: number
  accepted_changes: number
  rejected_messages: number
}

function deviceOf (peer: PeerId): string | undefined {
  const raw = peer.publicKey?.raw
  return raw != null && raw.length === 32 ? keyIdFromPublicKey(raw) : undefined
}

/**
 * Document sync between daemons over `/hearth/sync/1.0.0`: one long-lived
 * stream per connected peer, carrying one sync-engine session. The peer with
 * the smaller PeerId opens it (the other opens only if it has not after a
 * moment), so each pair keeps exactly one session. On a new session each side
 * subscribes to the documents it shares with the other's agent, and to each
 * new one as it appears; the engine checks every change and every read.
 */
export class SyncProtocol {
  private readonly host: HearthHost
  private readonly docs: DocumentService
  private readonly trust: TrustService
  private readonly policy: PeerPolicy
  private readonly log: Logger
  private readonly sessions = new Map<string, SessionEntry>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly backoff = new Map<string, number>()
  /** peers whose inbound stream waits for the store to open: no stream of our own to them meanwhile */
  private readonly attaching = new Set<string>()
  private running = false
  private offHeads?: () => void
  private offStatements?: () => void
  readonly sharing: Sharing

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (evt.detail.protocols.includes(SYNC_PROTOCOL)) this.consider(evt.detail.peerId)
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString()
    const t = this.timers.get(peer)
    if (t != null) clearTimeout(t)
    this.timers.delete(peer)
    this.backoff.delete(peer)
  }

  constructor (components: { host: HearthHost, docs: DocumentService, trust: TrustService, policy: PeerPolicy, log: Logger }) {
    this.host = components.host
    this.docs = components.docs
    this.trust = components.trust
    this.policy = components.policy
    this.log = components.log
    this.sharing = new Sharing(this.docs, () => this.sessions.values(), this.log)
  }

  async start (): Promise<void> {
    this.running = true
    await this.policy.handle(SYNC_PROTOCOL, (stream, conn) => { void this.inbound(stream, conn) }, { maxInboundStreams: 2, maxOutboundStreams: 2, runOnLimitedConnection: true, strangers: false })
    this.host.addEventListener('peer:identify', this.onIdentify as any)
    this.host.addEventListener('peer:disconnect', this.onDisconnect as any)
    this.docs.onOpen(docs => {
      if (!this.running) return
      this.offHeads = docs.store.onHeads(ev => { this.sharing.onHeads(docs, ev) })
      // documents appeared on a node that had none: sync with the peers already here
      void peersSpeaking(this.host, SYNC_PROTOCOL).then(peers => { for (const p of peers) this.consider(p) })
    })
    // a new relationship or certificate can widen what is shared with a peer
    this.offStatements = this.trust.graph.onStatement(() => { this.sharing.scheduleResubscribe() })
    this.sharing.start()
  }

  async stop (): Promise<void> {
    this.running = false
    this.offHeads?.()
    this.offStatements?.()
    this.sharing.stop()
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    this.host.removeEventListener('peer:identify', this.onIdentify as any)
    this.host.removeEventListener('peer:disconnect', this.onDisconnect as any)
    for (const e of [...this.sessions.values()]) e.session.close()
    this.sessions.clear()
    await this.host.unhandle(SYNC_PROTOCOL).catch(() => {})
  }

  sessionViews (): SyncSessionView[] {
    return [...this.sessions.values()].map(e => {
      const s = e.session.stats()
      return {
        peer_id: e.peer,
        device: e.device,
        agent: this.docs.agentOf(e.device) ?? null,
        initiator: e.initiator,
        opened_at: new Date(e.openedAt).toISOString(),
        subscribed: s.subscribed,
        peer_subscribed: s.peerSubscribed,
        pending: s.pending,
        in_flight: s.inFlight,
        sent_messages: s.sentMessages,
        sent_bytes: s.sentBytes,
        received_messages: s.receivedMessages,
        received_bytes: s.receivedBytes,
        accepted_changes: s.acceptedChanges,
        rejected_messages: s.rejectedMessages
      }
    })
  }

  private consider (peerId: PeerId): void {
    if (!this.running || this.docs.loaded == null) return
    const peer = peerId.toString()
    if (this.sessions.has(peer) || this.timers.has(peer) || this.attaching.has(peer)) return
    const delay = this.host.peerId.toString() < peer ? 0 : YIELD_MS
    const timer = setTimeout(() => {
      this.timers.delete(peer)
      if (!this.running || this.sessions.has(peer) || this.attaching.has(peer) || this.host.getConnections(peerId).length === 0) return
      void this.open(peerId)
    }, delay)
    timer.unref?.()
    this.timers.set(peer, timer)
  }

  private async open (peerId: PeerId): Promise<void> {
    const peer = peerId.toString()
    let stream: Stream
    try {
      stream = await openStream(this.host, peerId, SYNC_PROTOCOL, { signal: AbortSignal.timeout(10_000), runOnLimitedConnection: true })
    } catch (err: any) {
      this.log.debug({ peer, err: err?.message }, 'could not open a sync stream')
      this.retryLater(peerId)
      return
    }
    if (!this.running || this.sessions.has(peer)) {
      stream.abort(new Error('a session is already open'))
      return
    }
    const docs = this.docs.loaded
    const device = deviceOf(peerId)
    if (docs == null || device == null) {
      stream.abort(new Error('no document store'))
      return
    }
    this.attach(docs, stream, peerId, device, 'self')
  }

  private async inbound (stream: Stream, conn: Connection): Promise<void> {
    const peerId = conn.remotePeer
    const peer = peerId.toString()
    const device = deviceOf(peerId)
    if (device == null || !this.running) {
      stream.abort(new Error('refused'))
      return
    }
    let docs: OpenDocuments
    this.attaching.add(peer)
    try {
      docs = await this.docs.open()
    } catch (err: any) {
      stream.abort(new Error('document store unavailable'))
      this.log.warn({ err: err?.message }, 'could not open the document store for a peer')
      return
    } finally {
      this.attaching.delete(peer)
    }
    const existing = this.sessions.get(peer)
    if (existing != null) {
      // the smaller PeerId's stream wins a race; a newer stream from the same opener replaces a stale one
      const selfIsSmaller = this.host.peerId.toString() < peer
      if (existing.initiator === 'self' && selfIsSmaller && !existing.session.closed) {
        stream.abort(new Error('a session is already open'))
        return
      }
      this.sessions.delete(peer)
      existing.session.close()
    }
    this.attach(docs, stream, peerId, device, 'peer')
  }

  private attach (docs: OpenDocuments, stream: Stream, peerId: PeerId, device: string, initiator: SessionEntry['initiator']): void {
    const peer = peerId.toString()
    const pending = this.timers.get(peer)
    if (pending != null) { clearTimeout(pending); this.timers.delete(peer) }
    const channel = streamChannel(stream, {
      maxFrameBytes: MAX_FRAME_BYTES,
      keepAliveMs: KEEPALIVE_MS,
      guard: this.policy.guard(peerId),
      onError: reason => {
        this.log.warn({ peer, reason }, 'sync stream closed')
        if (reason.startsWith('bad frame')) this.policy.offence(peer, reason)
      }
    })
    // forged changes, bad headers, undecodable messages: what only a lying peer sends costs it a strike
    const session = docs.engine.connect(device, channel, { onMisbehaviour: code => { this.policy.offence(peer, `sync: ${code}`) } })
    const entry: SessionEntry = { peer, device, session, initiator, openedAt: Date.now(), subscribed: new Set(), declined: new Set(), unoffered: new Set() }
    this.sessions.set(peer, entry)
    this.backoff.delete(peer)
    channel.onClose(() => {
      if (this.sessions.get(peer) === entry) this.sessions.delete(peer)
      session.close()
      if (this.running && this.host.getConnections(peerId).length > 0) this.retryLater(peerId)
    })
    this.log.debug({ peer, initiator }, 'sync session open')
    // a peer of a linked agent is worth a connection: libp2p redials it when it drops, and at start
    if (this.docs.trusts(device)) {
      void this.host.peerStore.merge(peerId, { tags: { [SYNC_KEEP_ALIVE_TAG]: { value: 50 } } }).catch(() => {})
    }
    this.sharing.subscribeShared(entry)
  }

  private retryLater (peerId: PeerId): void {
    const peer = peerId.toString()
    if (!this.running || this.timers.has(peer)) return
    const wait = Math.min(REOPEN_MAX_MS, this.backoff.get(peer) ?? REOPEN_MIN_MS)
    this.backoff.set(peer, wait * 2)
    const timer = setTimeout(() => {
      this.timers.delete(peer)
      if (!this.running || this.sessions.has(peer) || this.host.getConnections(peerId).length === 0) return
      void this.open(peerId)
    }, wait)
    timer.unref?.()
    this.timers.set(peer, timer)
  }
}
