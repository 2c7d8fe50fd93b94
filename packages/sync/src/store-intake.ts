import * as A from '@automerge/automerge'
import { changesOfDocument } from './changes.js'
import type { AcceptedSignature, ExtractedChange } from './changes.js'
import type { ChangeSignature, WireHeader } from './codec.js'
import type { DocumentId } from './document-id.js'
import { AccessDeniedError, ChangeTooLargeError, DocumentNotFoundError, InvalidHeaderError, MalformedMessageError, SyncError } from './errors.js'
import { verifySignedHeader } from './header.js'
import { StoreBase, toSig, sameSet, EMPTY_DOC } from './store-base.js'
import type { ApplyResult, PeerDocState, ReceiveOptions } from './index.js'

/**
 * What arrives from peers and clients: headers, raw changes, whole saved
 * documents and Automerge sync messages, each checked before anything is
 * stored; and the per-peer sync states.
 */
export abstract class StoreIntake extends StoreBase {
  /**
   * Stores a header received from a peer (verified: signed by a device of the
   * owner). A new document is created empty; for a known one the header
   * replaces the stored one only with the same owner and a higher version.
   * Returns whether anything changed.
   */
  importHeader (wire: WireHeader, expectedId?: DocumentId): boolean {
    this.open()
    if (expectedId != null) {
      // the header a peer sends with its first message is usually the one stored: skip verifying it again
      const stored = this.stmt.getDoc.get(expectedId)
      if (stored != null && Buffer.from(stored.header).equals(wire.bytes)) return false
    }
    const signed = verifySignedHeader(wire.bytes, wire.device, wire.signature, this.verifier)
    if (expectedId != null && signed.header.id !== expectedId) throw new InvalidHeaderError('header names another document')
    const row = this.stmt.getDoc.get(signed.header.id)
    if (row == null) {
      this.insertHeader(signed, [])
      return true
    }
    if (row.owner !== signed.header.owner) throw new InvalidHeaderError('header names another owner than the stored one')
    if (signed.header.version <= row.header_version) return false
    this.writeHeader(signed)
    this.emit({ id: signed.header.id, heads: JSON.parse(row.heads) as string[], origin: 'acl' })
    return true
  }

  applyChanges (id: string, changes: readonly Uint8Array[], opts: ReceiveOptions): ApplyResult {
    const docId = this.id(id)
    const acl = this.acl(docId)
    const extracted = this.extract(docId, changes)
    const accepted = this.accept(docId, acl, extracted, opts)
    if (accepted.length === 0) return { accepted: 0, heads: this.heads(docId) }
    const doc = this.doc(docId)
    const fresh = extracted.filter(c => accepted.some(a => a.hash === c.hash))
    let next: A.Doc<unknown>
    try {
      [next] = A.applyChanges(doc, fresh.map(c => c.bytes))
    } catch {
      this.cache.delete(docId)
      this.reject(docId, opts.origin, new MalformedMessageError('Automerge refused the changes'))
    }
    return this.commit(docId, next!, fresh, accepted, opts.origin)
  }

  /**
   * A whole saved document from a peer, for a document this node holds
   * nothing of yet (it falls back to {@link applyChanges} otherwise). Every
   * change in it is checked like any other; the bytes become the snapshot,
   * with no change rows, so an initial sync costs one load and one insert.
   */
  importSnapshot (id: string, bytes: Uint8Array, opts: ReceiveOptions): ApplyResult {
    const docId = this.id(id)
    const acl = this.acl(docId)
    if (!this.isEmpty(docId)) return this.applyChanges(docId, [bytes], opts)
    if (bytes.length > 8 && bytes[8] !== 0) this.reject(docId, opts.origin, new MalformedMessageError('a snapshot is a saved document'))
    let doc: A.Doc<unknown>
    try {
      doc = A.load<unknown>(bytes, { actor: this.actorId })
    } catch {
      this.reject(docId, opts.origin, new MalformedMessageError('a snapshot does not load'))
    }
    let accepted: AcceptedSignature[]
    let all: Uint8Array[]
    try {
      const changes: ExtractedChange[] = changesOfDocument(doc!, this.maxChanges)
      for (const c of changes) if (c.bytes.length > this.maxChangeBytes) throw new ChangeTooLargeError(`change of ${c.bytes.length} bytes exceeds ${this.maxChangeBytes}`)
      all = changes.map(c => c.bytes)
      accepted = this.accept(docId, acl, changes, opts)
    } catch (err) {
      A.free(doc!)
      if (err instanceof SyncError) throw err
      this.reject(docId, opts.origin, err)
    }
    const heads = A.getHeads(doc!)
    const now = this.now()
    this.db.transaction(() => {
      for (const sig of accepted) {
        this.stmt.insertSig.run(docId, sig.hash, sig.actor, sig.seq, sig.device, sig.kind === 'custodial' ? 1 : 0, sig.signature, now)
      }
      this.stmt.putSnapshot.run(docId, JSON.stringify(heads), bytes, all!.length, now)
      this.stmt.setHeads.run(JSON.stringify(heads), now, docId)
    })()
    this.cache.set(docId, doc!)
    this.counters.acceptedChanges += accepted.length
    this.emit({ id: docId, heads, origin: opts.origin ?? 'remote' })
    return { accepted: accepted.length, heads }
  }

  /** true while nothing of the document's content is stored (only its header), without loading it */
  isEmpty (id: string): boolean {
    const docId = this.id(id)
    const cached = this.cache.get(docId)
    if (cached != null) return A.getHeads(cached as A.Doc<unknown>).length === 0 && (this.stmt.countChanges.get(docId)?.n ?? 0) === 0
    // the stored heads settle it for every document that holds anything applied
    if (this.row(docId).heads !== '[]') return false
    return (this.stmt.countChanges.get(docId)?.n ?? 0) === 0 && this.stmt.getSnapshot.get(docId) == null
  }

  /** every stored signature of the document (to send beside a whole saved document) */
  allSignatures (id: string): ChangeSignature[] {
    return this.stmt.allSigs.all(this.id(id)).map(toSig)
  }

  generateSyncMessage (id: string, state: A.SyncState): [A.SyncState, Uint8Array | null] {
    const docId = this.id(id)
    const doc = this.has(docId) ? this.doc(docId) : EMPTY_DOC()
    return A.generateSyncMessage(doc, state)
  }

  /** signatures of the changes an outgoing Automerge sync message carries (all of the document's for a document chunk) */
  signaturesForSyncMessage (id: string, message: Uint8Array): ChangeSignature[] {
    const docId = this.id(id)
    const chunks = A.decodeSyncMessage(message).changes
    if (chunks.length === 0) return []
    const out: ChangeSignature[] = []
    for (const chunk of chunks) {
      if (chunk.length > 8 && chunk[8] === 0) {
        out.push(...this.allSignatures(docId))
        continue
      }
      const r = this.stmt.getSig.get(docId, A.decodeChange(chunk).hash)
      if (r != null) out.push(toSig(r))
    }
    return out
  }

  receiveSyncMessage (id: string, state: A.SyncState, message: Uint8Array, opts: ReceiveOptions): { state: A.SyncState, result: ApplyResult } {
    const docId = this.id(id)
    this.open()
    if (!this.has(docId)) {
      if (opts.custodialFor == null) throw new DocumentNotFoundError(`document ${docId} is not stored here`)
      this.createCustodial(docId, opts.custodialFor)
    }
    let decoded: A.DecodedSyncMessage
    try {
      decoded = A.decodeSyncMessage(message)
    } catch {
      this.reject(docId, opts.origin, new MalformedMessageError('not an Automerge sync message'))
    }
    let extracted: ExtractedChange[] = []
    let accepted: AcceptedSignature[] = []
    if (decoded!.changes.length > 0 && opts.readOnly !== true) {
      extracted = this.extract(docId, decoded!.changes, opts.origin)
      accepted = this.accept(docId, this.acl(docId), extracted, opts)
    }
    const doc = this.doc(docId)
    const before = opts.readOnly === true ? A.getHeads(doc) : []
    let next: A.Doc<unknown>
    let nextState: A.SyncState
    try {
      [next, nextState] = A.receiveSyncMessage(doc, state, message)
    } catch {
      this.cache.delete(docId)
      this.reject(docId, opts.origin, new MalformedMessageError('Automerge refused the sync message'))
    }
    if (accepted.length === 0) {
      if (opts.readOnly === true && !sameSet(A.getHeads(next!), before)) {
        // a read-only state must not apply anything; if it did, drop the result
        this.cache.delete(docId)
        this.reject(docId, opts.origin, new AccessDeniedError('read-only sender changed the document'))
      }
      this.cache.set(docId, next!)
      return { state: nextState!, result: { accepted: 0, heads: A.getHeads(next!) } }
    }
    const acceptedHashes = new Set(accepted.map(a => a.hash))
    const fresh = extracted.filter(c => acceptedHashes.has(c.hash))
    return { state: nextState!, result: this.commit(docId, next!, fresh, accepted, opts.origin) }
  }

  loadSyncState (peer: string, id: string): PeerDocState {
    const row = this.stmt.getSyncState.get(peer, this.id(id))
    if (row != null) {
      try {
        return { state: A.decodeSyncState(row.state), headerVersion: row.header_version }
      } catch {
        this.log.warn({ peer, doc: id }, 'dropping an undecodable stored sync state')
      }
    }
    return { state: A.initSyncState(), headerVersion: 0 }
  }

  saveSyncStates (peer: string, states: Iterable<[DocumentId, PeerDocState]>): void {
    if (this.closed) return
    const now = this.now()
    this.db.transaction(() => {
      for (const [doc, s] of states) this.stmt.putSyncState.run(peer, doc, A.encodeSyncState(s.state), s.headerVersion, now)
    })()
  }
}
