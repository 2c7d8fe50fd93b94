import * as A from '@automerge/automerge'
import Database from 'better-sqlite3'
import type { AgentId, DeviceId } from '@hearth/trust'
import { extractChanges, verifyChanges } from './changes.js'
import type { AcceptedSignature, ExtractedChange } from './changes.js'
import type { ChangeSignature } from './codec.js'
import { DOC_CACHE_SIZE, MAX_CHANGE_BYTES, MAX_CHANGES_PER_MESSAGE, SCHEMA_VERSION } from './constants.js'
import { parseDocumentId } from './document-id.js'
import type { DocumentId } from './document-id.js'
import { AccessDeniedError, ClosedError, DocumentNotFoundError, MalformedMessageError, SyncError } from './errors.js'
import { aclOf, signHeader } from './header.js'
import type { DocumentHeader, SignedHeader } from './header.js'
import { LRUCache } from 'lru-cache'
import { openDatabase } from './schema.js'
import { actorIdFromDevice, changeSigningMessage, hexToBytes } from './signing.js'
import { prepareStatements } from './store-statements.js'
import type { DocRow, Statements } from './store-statements.js'
import type { ApplyResult, DocumentAcl, DocumentStoreComponents, DocumentStoreInit, HeadsEvent, Logger, ReceiveOptions, SignatureKind, Signer, Verifier } from './index.js'

const noop = (): void => {}
const NULL_LOGGER: Logger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop }

/**
 * The store's internals shared by what arrives from peers ({@link StoreIntake})
 * and the public document API ({@link SqliteDocumentStore}): the SQLite
 * handle and statements, the document and metadata caches, signing, the
 * checks every incoming change passes, and the commit of accepted changes.
 */
export abstract class StoreBase {
  readonly deviceId: DeviceId
  readonly actorId: string
  protected readonly db: Database.Database
  protected readonly signer: Signer
  protected readonly verifier: Verifier
  protected readonly log: Logger
  protected readonly now: () => number
  protected readonly cache: LRUCache<DocumentId, A.Doc<unknown>>
  protected readonly maxChangeBytes: number
  protected readonly maxChanges: number
  protected readonly listeners = new Set<(ev: HeadsEvent) => void>()
  protected readonly compacting = new Set<DocumentId>()
  protected closed = false
  protected readonly durableLocal: boolean
  protected readonly ids = new Map<string, DocumentId>()
  /** acl and header version per document: asked for on every message, changed only by headers */
  protected readonly meta = new LRUCache<DocumentId, { acl: DocumentAcl, headerVersion: number }>({ max: 100_000 })
  protected readonly idBytes = new Map<string, Uint8Array>()
  protected readonly counters = { localChanges: 0, acceptedChanges: 0, rejectedMessages: 0, compactions: 0 }
  protected readonly stmt: Statements

  constructor (init: DocumentStoreInit, components: DocumentStoreComponents) {
    this.signer = components.signer
    this.verifier = components.verifier
    this.log = components.logger?.forComponent('hearth:sync:store') ?? NULL_LOGGER
    this.now = components.clock?.now ?? Date.now
    this.deviceId = this.signer.deviceId
    this.actorId = actorIdFromDevice(this.deviceId)
    this.maxChangeBytes = init.maxChangeBytes ?? MAX_CHANGE_BYTES
    this.maxChanges = init.maxChangesPerMessage ?? MAX_CHANGES_PER_MESSAGE
    this.cache = new LRUCache({ max: Math.max(1, init.cacheSize ?? DOC_CACHE_SIZE) })
    this.db = new Database(init.path)
    this.durableLocal = (init.synchronous ?? 'full') === 'full'
    openDatabase(this.db)
    this.stmt = prepareStatements(this.db)
  }

  /** parseDocumentId with a cache: ids are checked (base58check) once, not on every call */
  protected id (raw: string): DocumentId {
    const hit = this.ids.get(raw)
    if (hit != null) return hit
    const parsed = parseDocumentId(raw)
    if (this.ids.size >= 10_000) {
      this.ids.clear()
      this.idBytes.clear()
    }
    this.ids.set(raw, parsed.id)
    this.idBytes.set(parsed.id, parsed.bytes)
    return parsed.id
  }

  protected bytesOf (id: DocumentId): Uint8Array {
    return this.idBytes.get(id) ?? parseDocumentId(id).bytes
  }

  has (id: string): boolean {
    this.open()
    const docId = this.id(id)
    return this.meta.get(docId) != null || this.stmt.hasDoc.get(docId) != null
  }

  acl (id: string): DocumentAcl {
    return this.metaOf(id).acl
  }

  protected metaOf (id: string): { acl: DocumentAcl, headerVersion: number } {
    const docId = this.id(id)
    let m = this.meta.get(docId)
    if (m == null) {
      const row = this.row(docId)
      m = { acl: JSON.parse(row.acl) as DocumentAcl, headerVersion: row.header_version }
      this.meta.set(docId, m)
    }
    return m
  }

  protected row (id: string): DocRow {
    this.open()
    const row = this.stmt.getDoc.get(this.id(id))
    if (row == null) throw new DocumentNotFoundError(`document ${id} is not stored here`)
    return row
  }

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

  heads (id: string): string[] {
    return A.getHeads(this.doc(id))
  }

  headerVersion (id: string): number {
    return this.metaOf(id).headerVersion
  }

  /**
   * This node's own writes (its changes, headers) wait for the disk: a lost
   * local change would let this device reuse an actor sequence number for a
   * different change, which peers that saw the first one refuse forever.
   * What arrives from peers commits without waiting (WAL, synchronous
   * NORMAL): after a power loss it is simply fetched again, and the next
   * durable commit flushes it anyway.
   */
  protected durable (fn: () => void): void {
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

  protected open (): void {
    if (this.closed) throw new ClosedError('document store is closed')
  }

  protected insertHeader (signed: SignedHeader, heads: string[]): void {
    const h = signed.header
    this.meta.set(h.id, { acl: aclOf(h), headerVersion: h.version })
    this.stmt.insertDoc.run(h.id, h.owner, JSON.stringify(aclOf(h)), h.schema_version, h.created_at, h.version,
      signed.bytes, signed.device, signed.signature, JSON.stringify(heads), this.now())
  }

  protected writeHeader (signed: SignedHeader): void {
    const h = signed.header
    this.meta.set(h.id, { acl: aclOf(h), headerVersion: h.version })
    this.stmt.updateHeader.run(h.owner, JSON.stringify(aclOf(h)), h.schema_version, h.version, signed.bytes, signed.device, signed.signature, this.now(), h.id)
  }

  protected createCustodial (id: DocumentId, agent: AgentId): void {
    const header: DocumentHeader = { schema_version: SCHEMA_VERSION, id, owner: agent, writers: [], readers: [], public: false, created_at: this.now(), version: 1 }
    this.insertHeader(signHeader(header, this.signer), [])
  }

  protected requireAgentWriter (agent: AgentId, acl: DocumentAcl): void {
    if (acl.owner !== agent && !acl.writers.includes(agent)) throw new AccessDeniedError(`agent ${agent} may not write this document`)
  }

  protected sign (id: DocumentId, d: { hash: string, actor: string, seq: number }, kind: SignatureKind): AcceptedSignature {
    const message = changeSigningMessage(kind, this.bytesOf(id), hexToBytes(d.hash))
    return { hash: d.hash, kind, device: this.deviceId, signature: this.signer.sign(message), actor: d.actor, seq: d.seq }
  }

  protected insertChange (id: DocumentId, bytes: Uint8Array, sig: AcceptedSignature): void {
    const now = this.now()
    this.stmt.insertChange.run(id, sig.hash, bytes, now)
    this.stmt.insertSig.run(id, sig.hash, sig.actor, sig.seq, sig.device, sig.kind === 'custodial' ? 1 : 0, sig.signature, now)
  }

  protected extract (id: DocumentId, chunks: readonly Uint8Array[], origin?: string): ExtractedChange[] {
    try {
      return extractChanges(chunks, { maxChangeBytes: this.maxChangeBytes, maxChanges: this.maxChanges })
    } catch (err) {
      this.reject(id, origin, err)
    }
  }

  protected accept (id: DocumentId, acl: DocumentAcl, changes: ExtractedChange[], opts: ReceiveOptions): AcceptedSignature[] {
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

  protected commit (id: DocumentId, next: A.Doc<unknown>, fresh: ExtractedChange[], accepted: AcceptedSignature[], origin?: string): ApplyResult {
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

  protected reject (id: DocumentId, origin: string | undefined, err: unknown): never {
    this.counters.rejectedMessages++
    const code = (err as SyncError)?.code ?? 'ERR_UNKNOWN'
    this.log.warn({ doc: id, origin, code }, 'rejected incoming changes')
    if (err instanceof SyncError) throw err
    throw new MalformedMessageError(`rejected: ${String((err as Error)?.message ?? err)}`)
  }

  protected emit (ev: HeadsEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev)
      } catch (err: any) {
        this.log.error({ err: String(err?.message ?? err) }, 'heads listener threw')
      }
    }
  }
}

export function sameSet (a: string[], b: string[]): boolean {
  return a.length === b.length && a.every(h => b.includes(h))
}

export function toSig (r: { hash: string, device: string, kind: number, sig: Uint8Array }): ChangeSignature {
  return { hash: r.hash, kind: r.kind === 1 ? 'custodial' : 'device', device: r.device, signature: r.sig }
}

let empty: A.Doc<unknown> | undefined
export function EMPTY_DOC (): A.Doc<unknown> {
  empty ??= A.init<unknown>()
  return empty
}
