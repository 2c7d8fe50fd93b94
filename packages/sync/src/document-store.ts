import { setImmediate as yieldToLoop } from 'node:timers/promises'
import * as A from '@automerge/automerge'
import type { AgentId } from '@hearth/trust'
import type { WireHeader } from './codec.js'
import { SCHEMA_VERSION } from './constants.js'
import { generateDocumentId, parseDocumentId } from './document-id.js'
import type { DocumentId } from './document-id.js'
import { AccessDeniedError, ChangeTooLargeError, DocumentExistsError, InvalidContentError } from './errors.js'
import { signHeader } from './header.js'
import type { DocumentHeader } from './header.js'
import { sameSet } from './store-base.js'
import { StoreIntake } from './store-intake.js'
import type { ChangeResult, CompactionResult, CreateDocumentInit, DocumentAcl, DocumentInfo, DocumentStore, DocumentStoreComponents, DocumentStoreInit, DocumentStoreStats, HeadsEvent, SignatureKind } from './index.js'

/**
 * Automerge documents in one SQLite file: documents and their metadata,
 * this node's own changes, compaction and lifecycle. See {@link DocumentStore}.
 */
export class SqliteDocumentStore extends StoreIntake implements DocumentStore {
  constructor (init: DocumentStoreInit, components: DocumentStoreComponents) {
    super(init, components)
  }

  create (init: CreateDocumentInit): DocumentInfo {
    this.open()
    const content = init.content ?? {}
    if (content == null || typeof content !== 'object' || Array.isArray(content)) throw new InvalidContentError('document content must be a JSON object')
    const id = init.id != null ? parseDocumentId(init.id).id : generateDocumentId().id
    if (this.has(id)) throw new DocumentExistsError(`document ${id} exists`)
    const header: DocumentHeader = {
      schema_version: SCHEMA_VERSION,
      id,
      owner: init.owner,
      writers: [...(init.writers ?? [])],
      readers: [...(init.readers ?? [])],
      public: init.public ?? false,
      created_at: init.createdAt ?? this.now(),
      version: 1
    }
    if (!this.verifier.mayWrite(this.deviceId, { owner: header.owner, writers: [] })) {
      throw new AccessDeniedError(`this device does not act for owner ${header.owner}`)
    }
    const signed = signHeader(header, this.signer)
    let doc: A.Doc<unknown>
    try {
      doc = A.from(structuredClone(content) as Record<string, unknown>, { actor: this.actorId })
    } catch (err: any) {
      throw new InvalidContentError(`content is not representable in Automerge: ${String(err?.message ?? err)}`)
    }
    const changes = A.getAllChanges(doc).map(c => ({ bytes: c, d: A.decodeChange(c) }))
    for (const c of changes) if (c.bytes.length > this.maxChangeBytes) throw new ChangeTooLargeError(`initial content of ${c.bytes.length} bytes exceeds ${this.maxChangeBytes}`)
    const heads = A.getHeads(doc)
    // the first state is stored as a snapshot, not as change rows: a peer that asks for the whole
    // document gets these bytes as they are, without loading it
    const saved = A.save(doc)
    const now = this.now()
    this.durable(() => {
      this.insertHeader(signed, heads)
      for (const c of changes) {
        const sig = this.sign(id, c.d, 'device')
        this.stmt.insertSig.run(id, sig.hash, sig.actor, sig.seq, sig.device, 0, sig.signature, now)
      }
      this.stmt.putSnapshot.run(id, JSON.stringify(heads), saved, changes.length, now)
    })
    this.cache.set(id, doc)
    this.counters.localChanges += changes.length
    this.emit({ id, heads, origin: 'local' })
    return this.info(id)
  }

  info (id: string): DocumentInfo {
    this.open()
    const row = this.row(id)
    const acl = JSON.parse(row.acl) as DocumentAcl
    return {
      id: row.id as DocumentId,
      url: `automerge:${row.id}`,
      owner: row.owner,
      acl,
      schema_version: row.schema_version,
      created_at: row.created_at,
      header_version: row.header_version,
      heads: JSON.parse(row.heads) as string[],
      pending_changes: this.stmt.countChanges.get(row.id)?.n ?? 0
    }
  }

  list (opts: { after?: string, limit?: number } = {}): DocumentId[] {
    this.open()
    const limit = Math.max(1, Math.min(opts.limit ?? 1000, 10_000))
    return this.stmt.list.all(opts.after ?? '', limit).map(r => r.id as DocumentId)
  }

  signedHeader (id: string): WireHeader {
    const row = this.row(id)
    return { bytes: row.header, device: row.header_device, signature: row.header_sig }
  }

  updateAcl (id: string, acl: Partial<Omit<DocumentAcl, 'owner'>>): DocumentInfo {
    const row = this.row(id)
    const cur = JSON.parse(row.acl) as DocumentAcl
    if (!this.verifier.mayWrite(this.deviceId, { owner: cur.owner, writers: [] })) throw new AccessDeniedError('only a device of the owner may change the ACL')
    const header: DocumentHeader = {
      schema_version: SCHEMA_VERSION,
      id: row.id as DocumentId,
      owner: cur.owner,
      writers: [...(acl.writers ?? cur.writers)],
      readers: [...(acl.readers ?? cur.readers)],
      public: acl.public ?? cur.public,
      created_at: row.created_at,
      version: row.header_version + 1
    }
    const signed = signHeader(header, this.signer)
    this.durable(() => { this.writeHeader(signed) })
    this.emit({ id: header.id, heads: JSON.parse(row.heads) as string[], origin: 'acl' })
    return this.info(id)
  }

  view (id: string): { value: unknown, heads: string[] } {
    const doc = this.doc(id)
    return { value: A.toJS(doc), heads: A.getHeads(doc) }
  }

  save (id: string): Uint8Array {
    const docId = this.id(id)
    if (this.cache.get(docId) == null) {
      this.row(docId)
      // nothing beside the snapshot: it is the saved document already
      if ((this.stmt.countChanges.get(docId)?.n ?? 0) === 0) {
        const snap = this.stmt.getSnapshot.get(docId)
        if (snap != null) return new Uint8Array(snap.bytes.buffer, snap.bytes.byteOffset, snap.bytes.byteLength)
      }
    }
    return A.save(this.doc(docId))
  }

  change (id: string, fn: (doc: any) => void, opts: { message?: string, custodialFor?: AgentId } = {}): ChangeResult {
    const docId = this.id(id)
    const acl = this.acl(docId)
    const kind: SignatureKind = opts.custodialFor != null ? 'custodial' : 'device'
    if (opts.custodialFor != null) this.requireAgentWriter(opts.custodialFor, acl)
    if (!this.verifier.mayWrite(this.deviceId, acl)) throw new AccessDeniedError(`this device may not write document ${docId}`)
    const doc = this.doc(docId)
    const prevHeads = A.getHeads(doc)
    let next: A.Doc<unknown>
    try {
      next = opts.message != null ? A.change(doc, { message: opts.message }, fn) : A.change(doc, fn)
    } catch (err: any) {
      this.cache.delete(docId)
      throw new InvalidContentError(`change failed: ${String(err?.message ?? err)}`)
    }
    const bytes = A.getLastLocalChange(next)
    const heads = A.getHeads(next)
    if (bytes == null || next === doc || sameSet(heads, prevHeads)) {
      this.cache.set(docId, next)
      return { heads, hash: null }
    }
    // a local change depends on every previous head: it is the only new head
    const meta = A.getChangesMetaSince(next, prevHeads)[0]
    const d = { hash: meta?.hash ?? heads[0], actor: this.actorId, seq: meta?.seq ?? 0 }
    if (bytes.length > this.maxChangeBytes) {
      this.cache.delete(docId)
      throw new ChangeTooLargeError(`change of ${bytes.length} bytes exceeds ${this.maxChangeBytes}`)
    }
    try {
      this.durable(() => {
        this.insertChange(docId, bytes, this.sign(docId, d, kind))
        this.stmt.setHeads.run(JSON.stringify(heads), this.now(), docId)
      })
    } catch (err) {
      this.cache.delete(docId)
      throw err
    }
    this.cache.set(docId, next)
    this.counters.localChanges++
    this.emit({ id: docId, heads, origin: 'local' })
    return { heads, hash: d.hash }
  }

  /**
   * Writes a snapshot of the document and drops the change rows it covers,
   * in one transaction. Covered means "in the saved document": the set of
   * hashes is taken from the same Automerge state that was saved, so a
   * change stored while the snapshot was being built (the method yields to
   * the event loop in between) is not in it and keeps its row. Changes
   * waiting for missing dependencies are never in it either.
   */
  async compact (id: string): Promise<CompactionResult> {
    const docId = this.id(id)
    if (this.compacting.has(docId)) return { compacted: false, snapshotBytes: 0, droppedChanges: 0 }
    this.compacting.add(docId)
    try {
      const doc = this.doc(docId)
      const bytes = A.save(doc)
      const covered = new Set(A.getChangesMetaSince(doc, []).map(c => c.hash))
      const heads = A.getHeads(doc)
      await yieldToLoop()
      this.open()
      let dropped = 0
      const wrote = this.db.transaction(() => {
        const prev = this.stmt.getSnapshot.get(docId)
        if (prev != null && prev.change_count > covered.size) return false
        this.stmt.putSnapshot.run(docId, JSON.stringify(heads), bytes, covered.size, this.now())
        for (const r of this.stmt.changeHashesOf.all(docId)) {
          if (covered.has(r.hash)) {
            this.stmt.deleteChange.run(r.seq)
            dropped++
          }
        }
        return true
      })()
      if (wrote) this.counters.compactions++
      return { compacted: wrote, snapshotBytes: bytes.length, droppedChanges: dropped }
    } finally {
      this.compacting.delete(docId)
    }
  }

  onHeads (listener: (ev: HeadsEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  stats (): DocumentStoreStats {
    const t = this.stmt.totals.get() as { changes: number, signatures: number, snapshots: number }
    return {
      documents: this.stmt.countDocs.get()?.n ?? 0,
      storedChanges: t.changes,
      signatures: t.signatures,
      snapshots: t.snapshots,
      loadedDocuments: this.cache.size,
      ...this.counters
    }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.listeners.clear()
    this.cache.clear()
    this.meta.clear()
    this.db.close()
  }
}
