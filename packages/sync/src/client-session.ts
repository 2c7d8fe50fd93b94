import * as A from '@automerge/automerge'
import type { AgentId } from '@hearth/trust'
import { parseDocumentId } from './document-id.js'
import type { DocumentId } from './document-id.js'
import { MessageTooLargeError, SyncError } from './errors.js'
import type { ClientMessage, ClientSession, ClientSessionInit, ClientSessionStats, DocumentAcl, DocumentStore, Logger } from './index.js'

const PASS = 64

export function agentMayRead (agent: AgentId, acl: DocumentAcl): boolean {
  return acl.public || agentMayWrite(agent, acl) || acl.readers.includes(agent)
}

export function agentMayWrite (agent: AgentId, acl: DocumentAcl): boolean {
  return acl.owner === agent || acl.writers.includes(agent)
}

interface Entry { state: A.SyncState, readOnly: boolean }

/**
 * A keyless client speaking the automerge-repo network protocol (the
 * doorway's WebSocket): raw Automerge sync messages per document, no
 * signatures. The client acts for one agent (its bearer token's); its new
 * changes are signed custodially by this node after checking that agent
 * against the ACL. A reader who is not a writer gets a read-only sync state:
 * it receives the document, and its own edits are never applied. A document
 * the agent may not read is answered `doc-unavailable`, exactly as an
 * unknown one, so its existence does not leak.
 */
export class RepoClientSession implements ClientSession {
  closed = false
  private readonly entries = new Map<DocumentId, Entry>()
  private readonly pending = new Set<DocumentId>()
  private readonly dirty = new Set<DocumentId>()
  private inFlight = 0
  private pumping = false
  private scheduled = false
  private readonly counters = { receivedMessages: 0, sentMessages: 0, sentBytes: 0, acceptedChanges: 0, rejectedMessages: 0, unavailable: 0 }

  constructor (readonly clientId: string, private readonly init: ClientSessionInit & { agent: AgentId }, private readonly deps: {
    store: DocumentStore
    log: Logger
    maxDocs: number
    maxInFlight: number
    maxMessageBytes: number
    onClose: (s: RepoClientSession) => void
  }) {}

  receive (msg: ClientMessage): void {
    if (this.closed) return
    this.counters.receivedMessages++
    if (msg == null || (msg.type !== 'sync' && msg.type !== 'request')) return
    let id: DocumentId
    try {
      id = parseDocumentId(msg.documentId).id
    } catch {
      this.counters.rejectedMessages++
      return
    }
    const store = this.deps.store
    const data = msg.data
    try {
      if (!(data instanceof Uint8Array)) throw new MessageTooLargeError('sync data must be bytes')
      if (data.length > this.deps.maxMessageBytes) throw new MessageTooLargeError(`sync message of ${data.length} bytes`)
      let entry = this.entries.get(id)
      if (entry == null) {
        if (this.entries.size >= this.deps.maxDocs) return this.unavailable(id)
        if (!store.has(id)) {
          // a document the client created: it becomes the agent's, when allowed
          if (msg.type !== 'sync' || this.init.allowCreate !== true || this.init.readOnly === true) return this.unavailable(id)
        } else if (!agentMayRead(this.init.agent, store.acl(id))) {
          return this.unavailable(id)
        }
        const readOnly = this.init.readOnly === true || (store.has(id) && !agentMayWrite(this.init.agent, store.acl(id)))
        const persisted = this.init.persistAs != null && store.has(id) ? store.loadSyncState(this.init.persistAs, id).state : A.initSyncState()
        entry = { state: readOnly ? A.initSyncState({ readOnly: true }) : persisted, readOnly }
        this.entries.set(id, entry)
      }
      const { state, result } = store.receiveSyncMessage(id, entry.state, data,
        entry.readOnly ? { readOnly: true, origin: this.clientId } : { custodialFor: this.init.agent, origin: this.clientId })
      entry.state = state
      this.dirty.add(id)
      this.counters.acceptedChanges += result.accepted
      this.pending.add(id)
      this.pump()
    } catch (err: any) {
      this.counters.rejectedMessages++
      this.deps.log.warn({ client: this.clientId, doc: id, code: err instanceof SyncError ? err.code : 'ERR_INTERNAL' }, 'rejected a client sync message')
    }
  }

  /** the store has new heads for a document */
  docChanged (id: DocumentId): void {
    if (this.closed || !this.entries.has(id)) return
    if (!agentMayRead(this.init.agent, this.deps.store.acl(id))) {
      // read access was revoked: stop syncing it
      this.entries.delete(id)
      return
    }
    this.pending.add(id)
    this.pump()
  }

  flush (): void {
    if (this.init.persistAs == null || this.dirty.size === 0) return
    const entries = [...this.dirty].flatMap(id => {
      const e = this.entries.get(id)
      return e != null && !e.readOnly ? [[id, { state: e.state, headerVersion: 0 }] as [DocumentId, { state: A.SyncState, headerVersion: number }]] : []
    })
    this.dirty.clear()
    try {
      this.deps.store.saveSyncStates(this.init.persistAs, entries)
    } catch (err: any) {
      this.deps.log.warn({ client: this.clientId, code: err?.code }, 'could not persist client sync states')
    }
  }

  stats (): ClientSessionStats {
    return { client: this.clientId, agent: this.init.agent, documents: this.entries.size, pending: this.pending.size, inFlight: this.inFlight, ...this.counters }
  }

  close (): void {
    if (this.closed) return
    this.flush()
    this.closed = true
    this.pending.clear()
    this.deps.onClose(this)
  }

  private unavailable (id: DocumentId): void {
    this.counters.unavailable++
    this.send({ type: 'doc-unavailable', documentId: id })
  }

  private pump (): void {
    if (this.closed || this.pumping) return
    this.pumping = true
    try {
      let sent = 0
      for (const id of this.pending) {
        if (this.inFlight >= this.deps.maxInFlight || sent >= PASS) break
        this.pending.delete(id)
        const entry = this.entries.get(id)
        if (entry == null) continue
        const [state, data] = this.deps.store.generateSyncMessage(id, entry.state)
        entry.state = state
        this.dirty.add(id)
        if (data == null) continue
        this.send({ type: 'sync', documentId: id, data })
        sent++
      }
      if (this.pending.size > 0 && this.inFlight < this.deps.maxInFlight) {
        if (!this.scheduled) {
          this.scheduled = true
          setImmediate(() => { this.scheduled = false; this.pump() })
        }
      }
    } finally {
      this.pumping = false
    }
  }

  private send (msg: ClientMessage): void {
    this.counters.sentMessages++
    if (msg.type === 'sync') this.counters.sentBytes += msg.data.length
    this.inFlight++
    let p: void | Promise<void>
    try {
      p = this.init.send(msg)
    } catch (err: any) {
      this.inFlight--
      this.deps.log.warn({ client: this.clientId, err: String(err?.message ?? err) }, 'client send failed; closing')
      this.close()
      return
    }
    if (p != null && typeof (p as Promise<void>).then === 'function') {
      (p as Promise<void>).then(() => { this.inFlight--; this.pump() }, () => { this.inFlight--; this.close() })
    } else {
      this.inFlight--
    }
  }
}
