import { keyIdFromPublicKey } from '@hearth/trust'
import type { Logger } from '@hearth/trust'
import type { DocumentId, HeadsEvent, PeerSession } from '@hearth/sync'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peersSpeaking } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PenaltyBox } from '../p2p/penalty-box.js'
import type { TrustService } from '../trust/service.js'
import type { DocumentService, OpenDocuments } from './service.js'
import { streamChannel } from './stream-channel.js'

export const SYNC_PROTOCOL = '/hearth/sync/1.0.0'

/** a frame is one wire message (capped at 8 MiB by the engine) plus its framing */
const MAX_FRAME_BYTES = 8 * 1024 * 1024 + 64 * 1024
const KEEPALIVE_MS = 30_000
/** the peer with the larger id waits this long for the smaller one to open the session */
const YIELD_MS = 250
const REOPEN_MIN_MS = 1000
const REOPEN_MAX_MS = 60_000
/** how often documents a peer did not take are offered again, besides on every trust change */
const REOFFER_MS = 60_000

interface Entry {
  peer: string
  device: string
  session: PeerSession
  /** who opened the stream */
  initiator: 'self' | 'peer'
  openedAt: number
  /** documents subscribed in this session */
  subscribed: Set<DocumentId>
  /** documents found not shared with this peer (decided again when their ACL changes) */
  declined: Set<DocumentId>
  /** documents offered that the peer did not take (yet): offered again when trust changes */
  unoffered: Set<DocumentId>
}

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
  private readonly penalty: PenaltyBox
  private readonly log: Logger
  private readonly sessions = new Map<string, Entry>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly backoff = new Map<string, number>()
  /** peers whose inbound stream waits for the store to open: no stream of our own to them meanwhile */
  private readonly attaching = new Set<string>()
  private running = false
  private offHeads?: () => void
  private offStatements?: () => void
  private offNotice?: () => void
  private reofferTimer?: ReturnType<typeof setInterval>
  private resubscribeTimer?: ReturnType<typeof setTimeout>

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

  constructor (components: { host: HearthHost, docs: DocumentService, trust: TrustService, penalty: PenaltyBox, log: Logger }) {
    this.host = components.host
    this.docs = components.docs
    this.trust = components.trust
    this.penalty = components.penalty
    this.log = components.log
  }

  async start (): Promise<void> {
    this.running = true
    await this.host.handle(SYNC_PROTOCOL, (stream, conn) => { void this.inbound(stream, conn) }, { maxInboundStreams: 2, maxOutboundStreams: 2 })
    this.host.addEventListener('peer:identify', this.onIdentify as any)
    this.host.addEventListener('peer:disconnect', this.onDisconnect as any)
    this.docs.onOpen(docs => {
      if (!this.running) return
      this.offHeads = docs.store.onHeads(ev => { this.onHeads(docs, ev) })
      // documents appeared on a node that had none: sync with the peers already here
      void peersSpeaking(this.host, SYNC_PROTOCOL).then(peers => { for (const p of peers) this.consider(p) })
    })
    // a new relationship or certificate can widen what is shared with a peer
    this.offStatements = this.trust.graph.onStatement(() => { this.scheduleResubscribe() })
    // a peer that said it lacks a document we offered may take it once it trusts us (its statements may come later)
    this.offNotice = this.docs.onNotice((device, doc, code) => {
      if (code !== 'ERR_DOC_NOT_FOUND') return
      for (const e of this.sessions.values()) if (e.device === device && e.subscribed.has(doc)) e.unoffered.add(doc)
    })
    this.reofferTimer = setInterval(() => { this.scheduleResubscribe() }, REOFFER_MS)
    this.reofferTimer.unref?.()
  }

  async stop (): Promise<void> {
    this.running = false
    this.offHeads?.()
    this.offStatements?.()
    this.offNotice?.()
    if (this.reofferTimer != null) clearInterval(this.reofferTimer)
    if (this.resubscribeTimer != null) clearTimeout(this.resubscribeTimer)
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

  /** the session with a peer, if one is open */
  session (peer: string): PeerSession | undefined {
    return this.sessions.get(peer)?.session
  }

  /**
   * Asks every peer with an open session for a document this node lacks and
   * waits until it arrives (`found`), every asked peer said it lacks it or
   * refuses it (`absent`), or the time is up (`timeout`). A document that is
   * not found is unsubscribed again; one that arrives stays subscribed.
   */
  async fetch (docs: OpenDocuments, id: DocumentId, timeoutMs: number): Promise<'found' | 'absent' | 'timeout'> {
    if (docs.store.has(id) && !docs.store.isEmpty(id)) return 'found'
    const asked = new Set<string>()
    for (const e of this.sessions.values()) {
      if (e.session.closed) continue
      try {
        if (!e.subscribed.has(id)) {
          e.session.subscribe([id])
          e.subscribed.add(id)
        }
        asked.add(e.device)
      } catch (err: any) {
        this.log.debug({ peer: e.peer, code: err?.code }, 'could not ask a peer for a document')
      }
    }
    if (asked.size === 0) return 'absent'
    const result = await new Promise<'found' | 'absent' | 'timeout'>(resolve => {
      const done = (r: 'found' | 'absent' | 'timeout'): void => {
        clearTimeout(timer)
        offHeads()
        offNotice()
        resolve(r)
      }
      const timer = setTimeout(() => { done('timeout') }, timeoutMs)
      const offHeads = docs.store.onHeads(ev => {
        if (ev.id === id && !docs.store.isEmpty(id)) done('found')
      })
      const offNotice = this.docs.onNotice((peer, doc) => {
        if (doc !== id) return
        asked.delete(peer)
        if (asked.size === 0) done('absent')
      })
    })
    if (result !== 'found') {
      for (const e of this.sessions.values()) {
        if (e.subscribed.delete(id) && !e.session.closed) e.session.unsubscribe([id])
      }
    }
    return result
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
      stream = await this.host.dialProtocol(peerId, SYNC_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
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

  private attach (docs: OpenDocuments, stream: Stream, peerId: PeerId, device: string, initiator: Entry['initiator']): void {
    const peer = peerId.toString()
    const pending = this.timers.get(peer)
    if (pending != null) { clearTimeout(pending); this.timers.delete(peer) }
    const channel = streamChannel(stream, {
      maxFrameBytes: MAX_FRAME_BYTES,
      keepAliveMs: KEEPALIVE_MS,
      onError: reason => {
        this.log.warn({ peer, reason }, 'sync stream closed')
        if (reason.startsWith('bad frame')) this.penalty.strike(peer, reason)
      }
    })
    const session = docs.engine.connect(device, channel)
    const entry: Entry = { peer, device, session, initiator, openedAt: Date.now(), subscribed: new Set(), declined: new Set(), unoffered: new Set() }
    this.sessions.set(peer, entry)
    this.backoff.delete(peer)
    channel.onClose(() => {
      if (this.sessions.get(peer) === entry) this.sessions.delete(peer)
      session.close()
      if (this.running && this.host.getConnections(peerId).length > 0) this.retryLater(peerId)
    })
    this.log.debug({ peer, initiator }, 'sync session open')
    this.subscribeShared(entry)
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

  private subscribeShared (entry: Entry): void {
    const ids = this.docs.sharedWith(entry.device).filter(id => !entry.subscribed.has(id))
    if (ids.length === 0 || entry.session.closed) return
    try {
      entry.session.subscribe(ids)
      for (const id of ids) entry.subscribed.add(id)
    } catch (err: any) {
      this.log.warn({ peer: entry.peer, code: err?.code, documents: ids.length }, 'could not subscribe every shared document')
    }
  }

  /** a document appeared (created here, or arrived) or its ACL changed: offer it to the peers it is shared with */
  private onHeads (docs: OpenDocuments, ev: HeadsEvent): void {
    if (this.sessions.size === 0) return
    let acl
    for (const e of this.sessions.values()) {
      if (e.subscribed.has(ev.id) || e.session.closed) continue
      // decided once per document and peer, and again when its ACL changes
      if (e.declined.has(ev.id) && ev.origin !== 'acl') continue
      try {
        acl ??= docs.store.acl(ev.id)
      } catch {
        return
      }
      if (!this.docs.shares(e.device, acl)) {
        e.declined.add(ev.id)
        continue
      }
      e.declined.delete(ev.id)
      try {
        e.session.subscribe([ev.id])
        e.subscribed.add(ev.id)
      } catch (err: any) {
        this.log.debug({ peer: e.peer, code: err?.code }, 'could not subscribe a new document')
      }
    }
  }

  private scheduleResubscribe (): void {
    if (this.resubscribeTimer != null || !this.running) return
    this.resubscribeTimer = setTimeout(() => {
      this.resubscribeTimer = undefined
      if (this.docs.loaded == null) return
      const docs = this.docs.loaded
      for (const e of this.sessions.values()) {
        e.declined.clear()
        this.subscribeShared(e)
        const again = [...e.unoffered].filter(id => docs?.store.has(id) === true)
        e.unoffered.clear()
        if (again.length === 0 || e.session.closed) continue
        // unsubscribe, then subscribe: the peer decides on the offer afresh
        e.session.unsubscribe(again)
        e.session.subscribe(again)
      }
    }, 500)
    this.resubscribeTimer.unref?.()
  }
}
