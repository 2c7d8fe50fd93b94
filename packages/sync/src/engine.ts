import type { DeviceId } from '@hearth/trust'
import type { DocumentId } from './document-id.js'
import { MAX_CONTROL_QUEUE, MAX_DOCS_PER_SESSION, MAX_IN_FLIGHT, MAX_MESSAGE_BYTES, SYNC_STATE_FLUSH_MS } from './constants.js'
import { RepoClientSession } from './client-session.js'
import { Session } from './session.js'
import type { SessionConfig } from './session.js'
import type { ClientSession, ClientSessionInit, ConnectOptions, DocumentStore, Logger, MessageChannel, PeerSession, SyncEngine, SyncEngineComponents, SyncEngineInit, SyncEngineStats, Verifier } from './index.js'

const noop = (): void => {}
const NULL_LOGGER: Logger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop }

/**
 * Holds the sessions. A store heads event (a local change, or changes
 * accepted from any peer) marks the document pending in every session that
 * syncs it; each session generates its messages lazily when its channel has
 * room, so a slow peer only delays itself.
 */
export class SyncEngineImpl implements SyncEngine {
  private readonly store: DocumentStore
  private readonly verifier: Verifier
  private readonly log: Logger
  private readonly config: SessionConfig
  private readonly live = new Set<Session>()
  private readonly clients = new Set<RepoClientSession>()
  private readonly flushMs: number
  private timer?: ReturnType<typeof setInterval>
  private unsubscribe?: () => void
  private readonly totals = { rejectedMessages: 0, acceptedChanges: 0 }
  private readonly acceptOffer?: (peer: DeviceId, doc: DocumentId) => boolean
  private readonly onNotice?: (peer: DeviceId, doc: DocumentId, code: string) => void

  constructor (init: SyncEngineInit, components: SyncEngineComponents) {
    this.store = components.store
    this.verifier = components.verifier
    this.acceptOffer = components.acceptOffer
    this.onNotice = components.onNotice
    this.log = components.logger?.forComponent('hearth:sync:engine') ?? NULL_LOGGER
    this.config = {
      maxMessageBytes: init.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      maxDocsPerSession: init.maxDocsPerSession ?? MAX_DOCS_PER_SESSION,
      maxInFlight: init.maxInFlight ?? MAX_IN_FLIGHT,
      maxControlQueue: init.maxControlQueue ?? MAX_CONTROL_QUEUE
    }
    this.flushMs = init.syncStateFlushMs ?? SYNC_STATE_FLUSH_MS
  }

  start (): void {
    if (this.unsubscribe != null) return
    this.unsubscribe = this.store.onHeads(ev => {
      for (const s of this.live) s.docChanged(ev.id)
      for (const c of this.clients) c.docChanged(ev.id)
    })
    this.timer = setInterval(() => {
      for (const s of this.live) s.flush()
      for (const c of this.clients) c.flush()
    }, this.flushMs)
    this.timer.unref?.()
  }

  connect (peer: DeviceId, channel: MessageChannel, opts: ConnectOptions = {}): PeerSession {
    this.start()
    const session = new Session(peer, channel, this.config, {
      store: this.store,
      verifier: this.verifier,
      log: this.log,
      acceptOffer: this.acceptOffer,
      onNotice: this.onNotice,
      onMisbehaviour: opts.onMisbehaviour,
      onClose: s => {
        this.live.delete(s)
        const st = s.stats()
        this.totals.rejectedMessages += st.rejectedMessages
        this.totals.acceptedChanges += st.acceptedChanges
      }
    })
    this.live.add(session)
    if (opts.subscribe != null && opts.subscribe.length > 0) session.subscribe(opts.subscribe)
    return session
  }

  openClientSession (clientId: string, init: ClientSessionInit): ClientSession {
    this.start()
    const session = new RepoClientSession(clientId, init, {
      store: this.store,
      log: this.log,
      maxDocs: this.config.maxDocsPerSession,
      maxInFlight: this.config.maxInFlight,
      maxMessageBytes: this.config.maxMessageBytes,
      onClose: c => { this.clients.delete(c) }
    })
    this.clients.add(session)
    return session
  }

  sessions (): PeerSession[] {
    return [...this.live]
  }

  stats (): SyncEngineStats {
    let rejected = this.totals.rejectedMessages
    let accepted = this.totals.acceptedChanges
    for (const s of this.live) {
      const st = s.stats()
      rejected += st.rejectedMessages
      accepted += st.acceptedChanges
    }
    return { sessions: this.live.size, rejectedMessages: rejected, acceptedChanges: accepted }
  }

  stop (): void {
    for (const s of [...this.live]) s.close()
    for (const c of [...this.clients]) c.close()
    if (this.timer != null) clearInterval(this.timer)
    this.timer = undefined
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }
}
