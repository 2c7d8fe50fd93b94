import type { Logger } from '@hearth/trust'
import type { DocumentId, HeadsEvent, PeerSession } from '@hearth/sync'
import type { DocumentService, OpenDocuments } from './service.js'

/** how often documents a peer did not take are offered again, besides on every trust change */
const REOFFER_MS = 60_000

/** One open sync session, as the protocol and the sharing policy see it. */
export interface SessionEntry {
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

/**
 * What each session offers and asks for: on a new session, every stored
 * document shared with the peer's agent; each new document as it appears;
 * documents a peer did not take, again once trust changes; and a document
 * this node lacks, asked of every peer when a user reads it.
 */
export class Sharing {
  private running = false
  private resubscribeTimer?: ReturnType<typeof setTimeout>
  private reofferTimer?: ReturnType<typeof setInterval>
  private offNotice?: () => void

  constructor (private readonly docs: DocumentService, private readonly sessions: () => Iterable<SessionEntry>, private readonly log: Logger) {}

  start (): void {
    this.running = true
    // a peer that said it lacks a document we offered may take it once it trusts us (its statements may come later)
    this.offNotice = this.docs.onNotice((device, doc, code) => {
      if (code !== 'ERR_DOC_NOT_FOUND') return
      for (const e of this.sessions()) if (e.device === device && e.subscribed.has(doc)) e.unoffered.add(doc)
    })
    this.reofferTimer = setInterval(() => { this.scheduleResubscribe() }, REOFFER_MS)
    this.reofferTimer.unref?.()
  }

  stop (): void {
    this.running = false
    this.offNotice?.()
    if (this.reofferTimer != null) clearInterval(this.reofferTimer)
    if (this.resubscribeTimer != null) clearTimeout(this.resubscribeTimer)
  }

  /** subscribes, in a new session, every stored document shared with the peer */
  subscribeShared (entry: SessionEntry): void {
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
  onHeads (docs: OpenDocuments, ev: HeadsEvent): void {
    const sessions = [...this.sessions()]
    if (sessions.length === 0) return
    let acl
    for (const e of sessions) {
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

  /** a trust change (or the periodic retry): offer again what peers may now take */
  scheduleResubscribe (): void {
    if (this.resubscribeTimer != null || !this.running) return
    this.resubscribeTimer = setTimeout(() => {
      this.resubscribeTimer = undefined
      if (this.docs.loaded == null) return
      const docs = this.docs.loaded
      for (const e of this.sessions()) {
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

  /**
   * Asks the peers of linked agents for a document this node lacks and
   * waits until it arrives (`found`), every asked peer said it lacks it or
   * refuses it (`absent`), or the time is up (`timeout`). A document that is
   * not found is unsubscribed again; one that arrives stays subscribed.
   * Strangers are not asked: a document id says nothing of its owner, so the
   * first valid header for it wins, and a stranger could answer with its own.
   */
  async fetch (docs: OpenDocuments, id: DocumentId, timeoutMs: number): Promise<'found' | 'absent' | 'timeout'> {
    if (docs.store.has(id) && !docs.store.isEmpty(id)) return 'found'
    const asked = new Set<string>()
    for (const e of this.sessions()) {
      if (e.session.closed || !this.docs.trusts(e.device)) continue
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
      for (const e of this.sessions()) {
        if (e.subscribed.delete(id) && !e.session.closed) e.session.unsubscribe([id])
      }
    }
    return result
  }
}
