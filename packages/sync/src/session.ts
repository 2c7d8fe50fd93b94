import type { DeviceId } from '@hearth/trust'
import { MAX_IDS_PER_MESSAGE } from './constants.js'
import { decodeMessage, encodeMessage } from './codec.js'
import type { WireMessage } from './codec.js'
import { parseDocumentId } from './document-id.js'
import type { DocumentId } from './document-id.js'
import { AccessDeniedError, DocumentNotFoundError, InvalidChangeSignatureError, InvalidDocumentIdError, InvalidHeaderError, MalformedMessageError, MessageTooLargeError, NotSubscribedError, SyncError, TooManyDocumentsError } from './errors.js'
import { PeerSyncStates } from './peer-states.js'
import { mayRead, syncStateWithSharedHeads } from './signing.js'
import type { DocumentStore, Logger, MessageChannel, PeerSession, SessionStats, Verifier } from './index.js'

export interface SessionConfig {
  maxMessageBytes: number
  maxDocsPerSession: number
  maxInFlight: number
  maxControlQueue: number
}

export interface SessionDeps {
  store: DocumentStore
  verifier: Verifier
  log: Logger
  onClose: (s: Session) => void
  /** the peer subscribed to a document this node lacks: ask it for the document too? */
  acceptOffer?: (peer: DeviceId, doc: DocumentId) => boolean
  /** the peer sent a doc-error about a document */
  onNotice?: (peer: DeviceId, doc: DocumentId, code: string) => void
  /** the peer sent what no honest peer sends (see ConnectOptions) */
  onMisbehaviour?: (code: string) => void
}

/** refusals only a lying or broken peer causes: an honest one relays only what it verified and decodes */
const MISBEHAVIOUR = new Set<string>([MalformedMessageError.code, MessageTooLargeError.code, InvalidChangeSignatureError.code, InvalidHeaderError.code, InvalidDocumentIdError.code])

/** how many messages one pump pass generates before yielding to the event loop */
const PASS = 64

/**
 * One peer over one channel. A document is synced in this session when
 * either side subscribed to it; this side sends a document's data only if
 * the peer may read it. Outgoing work is a set of pending document ids, not
 * a queue of bytes: a document changed ten times while the peer is slow is
 * one pending entry, and its message is generated when the channel has room.
 */
export class Session implements PeerSession {
  closed = false
  private readonly wanted = new Set<DocumentId>()
  private readonly peerWants = new Set<DocumentId>()
  private readonly denied = new Set<DocumentId>()
  private readonly states: PeerSyncStates
  private readonly pending = new Set<DocumentId>()
  /** documents the peer wants whole (it holds nothing of them) */
  private readonly snapshots = new Set<DocumentId>()
  private readonly control: Uint8Array[] = []
  private inFlight = 0
  private pumping = false
  private scheduled = false
  private idleWaiters: Array<() => void> = []
  private readonly counters = {
    sentMessages: 0, sentBytes: 0, receivedMessages: 0, receivedBytes: 0, acceptedChanges: 0, rejectedMessages: 0, droppedNotices: 0
  }

  private readonly peerErrors: Record<string, number> = {}

  constructor (readonly peer: DeviceId, private readonly channel: MessageChannel, private readonly config: SessionConfig, private readonly deps: SessionDeps) {
    this.states = new PeerSyncStates(peer, deps.store, deps.log)
    channel.onMessage(m => { this.receive(m) })
    channel.onClose?.(() => { this.close() })
  }

  // ------------------------------------------------------------ public

  subscribe (ids: readonly string[]): void {
    const fresh: DocumentId[] = []
    for (const raw of ids) {
      const id = parseDocumentId(raw).id
      if (this.wanted.has(id)) continue
      if (this.wanted.size >= this.config.maxDocsPerSession) throw new TooManyDocumentsError(`a session syncs at most ${this.config.maxDocsPerSession} documents`)
      this.wanted.add(id)
      fresh.push(id)
    }
    // documents this node holds: `subscribe`; for the others, ask for the whole document in one message
    // nothing new: no pump either (a subscribe from inside a heads event must not send what that event's caller is settling)
    if (fresh.length === 0) return
    const store = this.deps.store
    const held = fresh.filter(id => store.has(id))
    const lacking = fresh.filter(id => !store.has(id))
    for (const [type, list] of [['subscribe', held], ['want', lacking]] as const) {
      for (let i = 0; i < list.length; i += MAX_IDS_PER_MESSAGE) {
        this.control.push(encodeMessage({ type, docs: list.slice(i, i + MAX_IDS_PER_MESSAGE) }))
      }
    }
    // no sync message yet for the held ones: the peer answers a subscribe for a document it holds with
    // its own, and one it lacks with `want` (a snapshot then) — a message sent now would cross that snapshot
    this.pump()
  }

  unsubscribe (ids: readonly string[]): void {
    const gone: DocumentId[] = []
    for (const raw of ids) {
      const id = parseDocumentId(raw).id
      if (this.wanted.delete(id)) gone.push(id)
    }
    for (let i = 0; i < gone.length; i += MAX_IDS_PER_MESSAGE) {
      this.control.push(encodeMessage({ type: 'unsubscribe', docs: gone.slice(i, i + MAX_IDS_PER_MESSAGE) }))
    }
    this.pump()
  }

  stats (): SessionStats {
    return {
      peer: this.peer,
      subscribed: this.wanted.size,
      peerSubscribed: this.peerWants.size,
      pending: this.pending.size + this.snapshots.size,
      inFlight: this.inFlight,
      ...this.counters,
      peerErrors: { ...this.peerErrors }
    }
  }

  idle (): Promise<void> {
    if (this.isIdle()) return Promise.resolve()
    return new Promise(resolve => this.idleWaiters.push(resolve))
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.flush()
    this.pending.clear()
    this.snapshots.clear()
    this.control.length = 0
    try {
      this.channel.close()
    } catch {
      // already closed by the transport
    }
    this.deps.onClose(this)
    for (const w of this.idleWaiters.splice(0)) w()
  }

  // ------------------------------------------------------------ engine hooks

  /** the store has new heads for this document */
  docChanged (id: DocumentId): void {
    if (this.closed || !this.syncs(id)) return
    // an ACL change may have granted or revoked the peer's access: decide again
    this.denied.delete(id)
    this.pending.add(id)
    // deferred: the change may come from this session's own receive, which finishes first (and may settle it)
    this.reschedule()
  }

  /** writes sync states changed since the last flush */
  flush (): void {
    this.states.flush()
  }

  // ------------------------------------------------------------ internals

  private syncs (id: DocumentId): boolean {
    return this.wanted.has(id) || this.peerWants.has(id)
  }

  private isIdle (): boolean {
    return this.pending.size === 0 && this.snapshots.size === 0 && this.control.length === 0 && this.inFlight === 0
  }

  private notice (doc: DocumentId, code: string): void {
    if (this.control.length >= this.config.maxControlQueue) {
      this.counters.droppedNotices++
      return
    }
    this.control.push(encodeMessage({ type: 'doc-error', doc, code }))
    this.pump()
  }

  private receive (bytes: Uint8Array): void {
    if (this.closed) return
    this.counters.receivedMessages++
    this.counters.receivedBytes += bytes.length
    let msg: WireMessage
    try {
      msg = decodeMessage(bytes, this.config.maxMessageBytes)
    } catch (err: any) {
      // an undecodable frame could be anything: refuse it, count it, keep the session
      this.counters.rejectedMessages++
      this.deps.log.warn({ peer: this.peer, code: err?.code }, 'rejected a malformed message')
      this.misbehaved(err?.code ?? MalformedMessageError.code)
      return
    }
    switch (msg.type) {
      case 'subscribe': this.onSubscribe(msg.docs, false); break
      case 'want': this.onSubscribe(msg.docs, true); break
      case 'snapshot': this.onSnapshot(msg); break
      case 'unsubscribe': for (const id of msg.docs) this.peerWants.delete(id); break
      case 'sync': this.onSync(msg); break
      case 'doc-error':
        this.peerErrors[msg.code] = (this.peerErrors[msg.code] ?? 0) + 1
        // whatever went wrong, start this document's sync over: the peer may lack what we assumed it has
        this.states.restart(msg.doc)
        this.deps.onNotice?.(this.peer, msg.doc, msg.code)
        break
      case 'changes':
        // change bundles are for HTTP; a peer uses sync messages
        this.counters.rejectedMessages++
        this.misbehaved(MalformedMessageError.code)
        break
    }
  }

  private misbehaved (code: string): void {
    if (!MISBEHAVIOUR.has(code)) return
    try { this.deps.onMisbehaviour?.(code) } catch { /* the listener's failure is not the session's */ }
  }

  private onSubscribe (docs: DocumentId[], whole: boolean): void {
    const store = this.deps.store
    const offered: DocumentId[] = []
    for (const id of docs) {
      if (this.peerWants.has(id)) continue
      if (this.peerWants.size >= this.config.maxDocsPerSession) {
        this.notice(id, TooManyDocumentsError.code)
        continue
      }
      this.peerWants.add(id)
      if (!store.has(id)) {
        // a peer that holds the document offers it by subscribing: take it, when policy allows
        if (!whole && !this.wanted.has(id) && this.wanted.size < this.config.maxDocsPerSession && this.deps.acceptOffer?.(this.peer, id) === true) {
          offered.push(id)
          continue
        }
        // kept: if the document arrives later (from another peer), the session starts syncing it
        this.notice(id, DocumentNotFoundError.code)
        continue
      }
      if (whole) this.snapshots.add(id)
      else this.pending.add(id)
    }
    if (offered.length > 0) this.subscribe(offered)
    this.pump()
  }

  private onSync (msg: Extract<WireMessage, { type: 'sync' }>): void {
    const id = msg.doc
    const store = this.deps.store
    try {
      if (!this.syncs(id)) throw new NotSubscribedError(`document ${id} is not subscribed in this session`)
      if (msg.header != null) {
        if (!store.has(id) && !this.wanted.has(id)) throw new NotSubscribedError(`document ${id} was not requested`)
        store.importHeader(msg.header, id)
      }
      if (!store.has(id)) {
        // the peer asks for a document this node does not hold (yet); it was told so on subscribe
        return
      }
      const entry = this.states.get(id)
      const { state, result } = store.receiveSyncMessage(id, entry.state, msg.data, { signatures: msg.signatures, origin: this.peer })
      entry.state = state
      this.states.changed(id)
      this.counters.acceptedChanges += result.accepted
      this.pending.add(id)
      this.pump()
    } catch (err: any) {
      this.counters.rejectedMessages++
      const code = err instanceof SyncError ? err.code : 'ERR_INTERNAL'
      this.deps.log.warn({ peer: this.peer, doc: id, code }, 'rejected a sync message')
      this.misbehaved(code)
      if (!(err instanceof SyncError)) this.deps.log.error({ peer: this.peer, doc: id, err: String(err?.stack ?? err) }, 'unexpected error in a sync message')
      this.notice(id, code)
    }
  }

  private onSnapshot (msg: Extract<WireMessage, { type: 'snapshot' }>): void {
    const id = msg.doc
    const store = this.deps.store
    try {
      if (!this.wanted.has(id)) throw new NotSubscribedError(`document ${id} was not requested`)
      store.importHeader(msg.header, id)
      const hadNothing = store.isEmpty(id)
      const result = store.importSnapshot(id, msg.data, { signatures: msg.signatures, origin: this.peer })
      this.counters.acceptedChanges += result.accepted
      if (hadNothing) {
        // both sides now hold exactly these heads: later syncs start from them
        this.states.set(id, { state: syncStateWithSharedHeads(result.heads), headerVersion: store.headerVersion(id) })
        // the heads event of the import marked it pending here; the sender already has exactly this
        this.pending.delete(id)
      } else {
        this.pending.add(id)
        this.pump()
      }
    } catch (err: any) {
      this.counters.rejectedMessages++
      const code = err instanceof SyncError ? err.code : 'ERR_INTERNAL'
      this.deps.log.warn({ peer: this.peer, doc: id, code }, 'rejected a snapshot')
      this.misbehaved(code)
      this.notice(id, code)
    }
  }

  /** the whole document for a peer that holds nothing of it, or null */
  private buildSnapshot (id: DocumentId): Uint8Array | null {
    const store = this.deps.store
    if (!this.peerWants.has(id) || !store.has(id)) return null
    if (!this.readable(id)) return null
    const heads = store.heads(id)
    const bytes = encodeMessage({ type: 'snapshot', doc: id, header: store.signedHeader(id), data: store.save(id), signatures: store.allSignatures(id) })
    if (bytes.length > this.config.maxMessageBytes) {
      this.deps.log.error({ peer: this.peer, doc: id, bytes: bytes.length }, 'snapshot over the size cap; document not synced')
      this.notice(id, MessageTooLargeError.code)
      return null
    }
    this.states.set(id, { state: syncStateWithSharedHeads(heads), headerVersion: store.headerVersion(id) })
    return bytes
  }

  private readable (id: DocumentId): boolean {
    if (mayRead(this.deps.verifier, this.peer, this.deps.store.acl(id))) return true
    if (this.peerWants.has(id) && !this.denied.has(id)) {
      this.denied.add(id)
      this.notice(id, AccessDeniedError.code)
    }
    return false
  }

  /** the wire message to send for a pending document, or null */
  private build (id: DocumentId): Uint8Array | null {
    const store = this.deps.store
    if (!this.syncs(id)) return null
    const has = store.has(id)
    if (has) {
      if (!this.readable(id)) return null
    } else if (!this.wanted.has(id)) {
      return null
    }
    const entry = this.states.get(id)
    const [state, data] = store.generateSyncMessage(id, entry.state)
    entry.state = state
    this.states.changed(id)
    if (data == null) return null
    const msg: WireMessage = { type: 'sync', doc: id, data, signatures: has ? store.signaturesForSyncMessage(id, data) : [] }
    if (has) {
      // the header goes with the first message to a peer, and again after each ACL change
      const version = store.headerVersion(id)
      if (entry.headerVersion !== version) {
        msg.header = store.signedHeader(id)
        entry.headerVersion = version
      }
    }
    const bytes = encodeMessage(msg)
    if (bytes.length > this.config.maxMessageBytes) {
      this.deps.log.error({ peer: this.peer, doc: id, bytes: bytes.length }, 'sync message over the size cap; document not synced')
      this.notice(id, MessageTooLargeError.code)
      return null
    }
    return bytes
  }

  private pump (): void {
    if (this.closed) return
    if (this.pumping) return
    this.pumping = true
    try {
      let sent = 0
      while (this.control.length > 0 && this.inFlight < this.config.maxInFlight && !this.closed) {
        this.send(this.control.shift() as Uint8Array)
        sent++
      }
      for (const [set, build] of [[this.snapshots, this.buildSnapshot], [this.pending, this.build]] as const) {
        for (const id of set) {
          if (this.inFlight >= this.config.maxInFlight || this.closed || sent >= PASS) break
          set.delete(id)
          let bytes: Uint8Array | null = null
          try {
            bytes = build.call(this, id)
          } catch (err: any) {
            this.deps.log.warn({ peer: this.peer, doc: id, code: err?.code, err: err?.message }, 'could not build a sync message')
          }
          if (bytes != null) {
            this.send(bytes)
            sent++
          }
        }
      }
      if (!this.closed && (this.pending.size > 0 || this.snapshots.size > 0 || this.control.length > 0) && this.inFlight < this.config.maxInFlight) this.reschedule()
    } finally {
      this.pumping = false
    }
    if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w()
  }

  private reschedule (): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  private send (bytes: Uint8Array): void {
    this.counters.sentMessages++
    this.counters.sentBytes += bytes.length
    this.inFlight++
    let p: void | Promise<void>
    try {
      p = this.channel.send(bytes)
    } catch (err: any) {
      this.inFlight--
      this.deps.log.warn({ peer: this.peer, err: String(err?.message ?? err) }, 'channel send failed; closing the session')
      this.close()
      return
    }
    if (p != null && typeof (p as Promise<void>).then === 'function') {
      (p as Promise<void>).then(() => {
        this.inFlight--
        this.pump()
      }, (err: any) => {
        this.inFlight--
        if (!this.closed) this.deps.log.warn({ peer: this.peer, err: String(err?.message ?? err) }, 'channel send failed; closing the session')
        this.close()
      })
    } else {
      this.inFlight--
    }
  }
}
