import { setImmediate as yieldToLoop } from 'node:timers/promises'
import * as A from '@automerge/automerge'
import Database from 'better-sqlite3'
import type { AgentId, DeviceId } from '@hearth/trust'
import { extractChanges, verifyChanges } from './changes.js'
import type { AcceptedSignature, ExtractedChange } from './changes.js'
import type { ChangeSignature, WireHeader } from './codec.js'
import { DOC_CACHE_SIZE, MAX_CHANGE_BYTES, MAX_CHANGES_PER_MESSAGE, SCHEMA_VERSION } from './constants.js'
import { generateDocumentId, parseDocumentId } from './document-id.js'
import type { DocumentId } from './document-id.js'
import {
  AccessDeniedError, ChangeTooLargeError, ClosedError, DocumentExistsError, DocumentNotFoundError,
  InvalidContentError, InvalidHeaderError, MalformedMessageError, MessageTooLargeError, SyncError
} from './errors.js'
import { aclOf, signHeader, verifySignedHeader } from './header.js'
import type { DocumentHeader, SignedHeader } from './header.js'
import { LruCache } from './lru.js'
import { openDatabase } from './schema.js'
import { actorIdFromDevice, changeSigningMessage, hexToBytes } from './signing.js'
import type {
  ApplyResult, ChangeResult, CompactionResult, CreateDocumentInit, DocumentAcl, DocumentInfo, DocumentStore,
  DocumentStoreComponents, DocumentStoreInit, DocumentStoreStats, HeadsEvent, Logger, PeerDocState, ReceiveOptions, SignatureKind, Signer, Verifier
} from './index.js'

interface DocRow {
  id: string
  owner: string
  acl: string
  schema_version: number
  created_at: number
  header_version: number
  header: Uint8Array
  header_device: string
  header_sig: Uint8Array
  heads: string
}

const noop = (): void => {}
const NULL_LOGGER: Logger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop }

export class SqliteDocumentStore implements DocumentStore {
  readonly deviceId: DeviceId
  readonly actorId: string
  private readonly db: Database.Database
  private readonly signer: Signer
  private readonly verifier: Verifier
  private readonly log: Logger
  private readonly now: () => number
  private readonly cache: LruCache<DocumentId, A.Doc<unknown>>
  private readonly maxChangeBytes: number
  private readonly maxChanges: number
  private readonly listeners = new Set<(ev: HeadsEvent) => void>()
  private readonly compacting = new Set<DocumentId>()
  private closed = false
  private readonly durableLocal: boolean
  private readonly ids = new Map<string, DocumentId>()
  /** acl and header version per document: asked for on every message, changed only by headers */
  private readonly meta = new LruCache<DocumentId, { acl: DocumentAcl, headerVersion: number }>(100_000)
  private readonly idBytes = new Map<string, Uint8Array>()
  private readonly counters = { localChanges: 0, acceptedChanges: 0, rejectedMessages: 0, compactions: 0 }
  private readonly stmt

  constructor (init: DocumentStoreInit, components: DocumentStoreComponents) {
    this.signer = components.signer
    this.verifier = components.verifier
    this.log = components.logger?.forComponent('hearth:sync:store') ?? NULL_LOGGER
    this.now = components.clock?.now ?? Date.now
    this.deviceId = this.signer.deviceId
    this.actorId = actorIdFromDevice(this.deviceId)
    this.maxChangeBytes = init.maxChangeBytes ?? MAX_CHANGE_BYTES
    this.maxChanges = init.maxChangesPerMessage ?? MAX_CHANGES_PER_MESSAGE
    this.cache = new LruCache(init.cacheSize ?? DOC_CACHE_SIZE)
    this.db = new Database(init.path)
    this.durableLocal = (init.synchronous ?? 'full') === 'full'
    openDatabase(this.db)
    const db = this.db
    this.stmt = {
      getDoc: db.prepare<[string], DocRow>('SELECT * FROM documents WHERE id = ?'),
      hasDoc: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM documents WHERE id = ?'),
      insertDoc: db.prepare('INSERT INTO documents (id, owner, acl, schema_version, created_at, header_version, header, header_device, header_sig, heads, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      updateHeader: db.prepare('UPDATE documents SET owner = ?, acl = ?, schema_version = ?, header_version = ?, header = ?, header_device = ?, header_sig = ?, updated_at = ? WHERE id = ?'),
      setHeads: db.prepare('UPDATE documents SET heads = ?, updated_at = ? WHERE id = ?'),
      list: db.prepare<[string, number], { id: string }>('SELECT id FROM documents WHERE id > ? ORDER BY id LIMIT ?'),
      countDocs: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM documents'),
      insertChange: db.prepare('INSERT OR IGNORE INTO changes (doc, hash, bytes, received_at) VALUES (?, ?, ?, ?)'),
      insertSig: db.prepare('INSERT OR IGNORE INTO signatures (doc, hash, actor, change_seq, device, kind, sig, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      hasSig: db.prepare<[string, string], { one: number }>('SELECT 1 AS one FROM signatures WHERE doc = ? AND hash = ?'),
      getSig: db.prepare<[string, string], { hash: string, device: string, kind: number, sig: Uint8Array }>('SELECT hash, device, kind, sig FROM signatures WHERE doc = ? AND hash = ?'),
      allSigs: db.prepare<[string], { hash: string, device: string, kind: number, sig: Uint8Array }>('SELECT hash, device, kind, sig FROM signatures WHERE doc = ?'),
      countSigs: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM signatures WHERE doc = ?'),
      changesOf: db.prepare<[string], { seq: number, hash: string, bytes: Uint8Array }>('SELECT seq, hash, bytes FROM changes WHERE doc = ? ORDER BY seq'),
      changeHashesOf: db.prepare<[string], { seq: number, hash: string }>('SELECT seq, hash FROM changes WHERE doc = ?'),
      countChanges: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM changes WHERE doc = ?'),
      deleteChange: db.prepare('DELETE FROM changes WHERE seq = ?'),
      getSnapshot: db.prepare<[string], { bytes: Uint8Array, change_count: number }>('SELECT bytes, change_count FROM snapshots WHERE doc = ?'),
      putSnapshot: db.prepare('INSERT OR REPLACE INTO snapshots (doc, heads, bytes, change_count, created_at) VALUES (?, ?, ?, ?, ?)'),
      getSyncState: db.prepare<[string, string], { state: Uint8Array, header_version: number }>('SELECT state, header_version FROM sync_states WHERE peer = ? AND doc = ?'),
      putSyncState: db.prepare('INSERT OR REPLACE INTO sync_states (peer, doc, state, header_version, updated_at) VALUES (?, ?, ?, ?, ?)'),
      totals: db.prepare<[], { changes: number, signatures: number, snapshots: number }>(
        'SELECT (SELECT count(*) FROM changes) AS changes, (SELECT count(*) FROM signatures) AS signatures, (SELECT count(*) FROM snapshots) AS snapshots')
    }
  }

  /** parseDocumentId with a cache: ids are checked (base58check) once, not on every call */
  private id (raw: string): DocumentId {
    const hit = this.ids.get(raw)
    if (hit != null) return hit
    const parsed = parseDocumentId(raw)
    if (this.ids.size >= 10_000) this.ids.clear()
    this.ids.set(raw, parsed.id)
    this.idBytes.set(parsed.id, parsed.bytes)
    return parsed.id
  }

  private bytesOf (id: DocumentId): Uint8Array {
    return this.idBytes.get(id) ?? this.bytesOf(id)
  }

  // ------------------------------------------------------------ documents

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
    this.durable(() => {
      this.insertHeader(signed, heads)
      for (const c of changes) this.insertChange(id, c.bytes, this.sign(id, c.d, 'device'))
    })
    this.cache.set(id, doc)
    this.counters.localChanges += changes.length
    this.emit({ id, heads, origin: 'local' })
    return this.info(id)
  }

  has (id: string): boolean {
    this.open()
    const docId = this.id(id)
    return this.meta.get(docId) != null || this.stmt.hasDoc.get(docId) != null
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

  acl (id: string): DocumentAcl {
    return this.metaOf(id).acl
  }

  private metaOf (id: string): { acl: DocumentAcl, headerVersion: number } {
    const docId = this.id(id)
    let m = this.meta.get(docId)
    if (m == null) {
      const row = this.row(docId)
      m = { acl: JSON.parse(row.acl) as DocumentAcl, headerVersion: row.header_version }
      this.meta.set(docId, m)
    }
    return m
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

  // ------------------------------------------------------------ reading

  doc (id: string): A.Doc<unknown> {
    this.open()
    const docId = this.id(id)
    const cached = this.cache.get(docId)
    if (cached != null) return cached
    this.row(docId)
    const snap = this.stmt.getSnapshot.get(docId)
    let doc = snap != null ? A.load<unknown>(snap.bytes, { actor: this.actorId }) : A.init<unknown>({ actor: this.actorId })
    const rows = this.stmt.changesOf.all(docId)
    if (rows.length > 0) [doc] = A.applyChanges(doc, rows.map(r => r.bytes))
    this.cache.set(docId, doc)
    return doc
  }

  view (id: string): { value: unknown, heads: string[] } {
    const doc = this.doc(id)
    return { value: A.toJS(doc), heads: A.getHeads(doc) }
  }

  heads (id: string): string[] {
    return A.getHeads(this.doc(id))
  }

  save (id: string): Uint8Array {
    return A.save(this.doc(id))
  }

  // ------------------------------------------------------------ writing

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
      all = A.getAllChanges(doc!)
      if (all.length > this.maxChanges) throw new MessageTooLargeError(`more than ${this.maxChanges} changes in one snapshot`)
      const changes: ExtractedChange[] = all.map(c => {
        if (c.length > this.maxChangeBytes) throw new ChangeTooLargeError(`change of ${c.length} bytes exceeds ${this.maxChangeBytes}`)
        const d = A.decodeChange(c)
        return { hash: d.hash, actor: d.actor, seq: d.seq, bytes: c }
      })
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
    if (this.cache.get(docId) != null) return A.getHeads(this.cache.get(docId) as A.Doc<unknown>).length === 0 && (this.stmt.countChanges.get(docId)?.n ?? 0) === 0
    return this.row(docId).heads === '[]' && (this.stmt.countChanges.get(docId)?.n ?? 0) === 0 && this.stmt.getSnapshot.get(docId) == null
  }

  /** every stored signature of the document (to send beside a whole saved document) */
  allSignatures (id: string): ChangeSignature[] {
    return this.stmt.allSigs.all(this.id(id)).map(toSig)
  }

  // ------------------------------------------------------------ sync (for the engine and transports)

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

  headerVersion (id: string): number {
    return this.metaOf(id).headerVersion
  }

  // ------------------------------------------------------------ compaction

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

  // ------------------------------------------------------------ events and lifecycle

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

  // ------------------------------------------------------------ internals

  /**
   * This node's own writes (its changes, headers) wait for the disk: a lost
   * local change would let this device reuse an actor sequence number for a
   * different change, which peers that saw the first one refuse forever.
   * What arrives from peers commits without waiting (WAL, synchronous
   * NORMAL): after a power loss it is simply fetched again, and the next
   * durable commit flushes it anyway.
   */
  private durable (fn: () => void): void {
    if (!this.durableLocal) {
      this.db.transaction(fn)()
      return
    }
    this.db.pragma('synchronous = FULL')
    try {
      this.db.transaction(fn)()
    } finally {
      this.db.pragma('synchronous = NORMAL')
    }
  }

  private open (): void {
    if (this.closed) throw new ClosedError('document store is closed')
  }

  private row (id: string): DocRow {
    this.open()
    const row = this.stmt.getDoc.get(this.id(id))
    if (row == null) throw new DocumentNotFoundError(`document ${id} is not stored here`)
    return row
  }

  private insertHeader (signed: SignedHeader, heads: string[]): void {
    const h = signed.header
    this.meta.set(h.id, { acl: aclOf(h), headerVersion: h.version })
    this.stmt.insertDoc.run(h.id, h.owner, JSON.stringify(aclOf(h)), h.schema_version, h.created_at, h.version,
      signed.bytes, signed.device, signed.signature, JSON.stringify(heads), this.now())
  }

  private writeHeader (signed: SignedHeader): void {
    const h = signed.header
    this.meta.set(h.id, { acl: aclOf(h), headerVersion: h.version })
    this.stmt.updateHeader.run(h.owner, JSON.stringify(aclOf(h)), h.schema_version, h.version, signed.bytes, signed.device, signed.signature, this.now(), h.id)
  }

  private createCustodial (id: DocumentId, agent: AgentId): void {
    const header: DocumentHeader = { schema_version: SCHEMA_VERSION, id, owner: agent, writers: [], readers: [], public: false, created_at: this.now(), version: 1 }
    this.insertHeader(signHeader(header, this.signer), [])
  }

  private requireAgentWriter (agent: AgentId, acl: DocumentAcl): void {
    if (acl.owner !== agent && !acl.writers.includes(agent)) throw new AccessDeniedError(`agent ${agent} may not write this document`)
  }

  private sign (id: DocumentId, d: { hash: string, actor: string, seq: number }, kind: SignatureKind): AcceptedSignature {
    const message = changeSigningMessage(kind, this.bytesOf(id), hexToBytes(d.hash))
    return { hash: d.hash, kind, device: this.deviceId, signature: this.signer.sign(message), actor: d.actor, seq: d.seq }
  }

  private insertChange (id: DocumentId, bytes: Uint8Array, sig: AcceptedSignature): void {
    const now = this.now()
    this.stmt.insertChange.run(id, sig.hash, bytes, now)
    this.stmt.insertSig.run(id, sig.hash, sig.actor, sig.seq, sig.device, sig.kind === 'custodial' ? 1 : 0, sig.signature, now)
  }

  private extract (id: DocumentId, chunks: readonly Uint8Array[], origin?: string): ExtractedChange[] {
    try {
      return extractChanges(chunks, { maxChangeBytes: this.maxChangeBytes, maxChanges: this.maxChanges })
    } catch (err) {
      this.reject(id, origin, err)
    }
  }

  private accept (id: DocumentId, acl: DocumentAcl, changes: ExtractedChange[], opts: ReceiveOptions): AcceptedSignature[] {
    const known = (hash: string): boolean => this.stmt.hasSig.get(id, hash) != null
    if (opts.custodialFor != null) {
      const fresh = changes.filter(c => !known(c.hash))
      if (fresh.length === 0) return []
      try {
        this.requireAgentWriter(opts.custodialFor, acl)
      } catch (err) {
        this.reject(id, opts.origin, err)
      }
      return fresh.map(c => this.sign(id, c, 'custodial'))
    }
    try {
      return verifyChanges(this.bytesOf(id), acl, changes, opts.signatures ?? [], known, this.verifier)
    } catch (err) {
      this.reject(id, opts.origin, err)
    }
  }

  private commit (id: DocumentId, next: A.Doc<unknown>, fresh: ExtractedChange[], accepted: AcceptedSignature[], origin?: string): ApplyResult {
    const byHash = new Map(fresh.map(c => [c.hash, c]))
    const heads = A.getHeads(next)
    try {
      this.db.transaction(() => {
        for (const s of accepted) this.insertChange(id, (byHash.get(s.hash) as ExtractedChange).bytes, s)
        this.stmt.setHeads.run(JSON.stringify(heads), this.now(), id)
      })()
    } catch (err) {
      this.cache.delete(id)
      throw err
    }
    this.cache.set(id, next)
    this.counters.acceptedChanges += accepted.length
    this.emit({ id, heads, origin: origin ?? 'remote' })
    return { accepted: accepted.length, heads }
  }

  private reject (id: DocumentId, origin: string | undefined, err: unknown): never {
    this.counters.rejectedMessages++
    const code = (err as SyncError)?.code ?? 'ERR_UNKNOWN'
    this.log.warn({ doc: id, origin, code }, 'rejected incoming changes')
    if (err instanceof SyncError) throw err
    throw new MalformedMessageError(`rejected: ${String((err as Error)?.message ?? err)}`)
  }

  private emit (ev: HeadsEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev)
      } catch (err: any) {
        this.log.error({ err: String(err?.message ?? err) }, 'heads listener threw')
      }
    }
  }
}

function sameSet (a: string[], b: string[]): boolean {
  return a.length === b.length && a.every(h => b.includes(h))
}

function toSig (r: { hash: string, device: string, kind: number, sig: Uint8Array }): ChangeSignature {
  return { hash: r.hash, kind: r.kind === 1 ? 'custodial' : 'device', device: r.device, signature: r.sig }
}

let empty: A.Doc<unknown> | undefined
function EMPTY_DOC (): A.Doc<unknown> {
  empty ??= A.init<unknown>()
  return empty
}
