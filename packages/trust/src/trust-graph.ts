import Database from 'better-sqlite3'
import { DEFAULT_CLOCK_SKEW_MS, DEFAULT_STATEMENTS_PAGE, MAX_STATEMENT_BYTES, MAX_STATEMENTS_PAGE } from './constants.js'
import {
  DeviceNotCertifiedError, KeyRevokedError, KeyRotatedError, StatementExpiredError, StatementTooLargeError
} from './errors.js'
import { graphSnapshot } from './graph-snapshot.js'
import { GraphQueries } from './graph-queries.js'
import { countsSql, openSchema } from './graph-schema.js'
import { isKeyId, keyIdFromPublicKey, publicKeyFromKeyId } from './ids.js'
import { rebuildKeyChains } from './key-chains.js'
import { verifyStatement } from './statement.js'
import type { AgentId, DeviceId, KeyId, StatementId } from './ids.js'
import type { KeyRow } from './key-chains.js'
import type { Logger } from './logger.js'
import type {
  AddResult, AgentInfo, DeviceInfo, GrantInfo, GraphSnapshot, NodeIdentity, RelationshipInfo, ReplicationTarget,
  SignedStatement, StatementsPage, StatementsQuery, StatementType, StoredStatement, TrustGraph, TrustGraphComponents,
  TrustGraphInit, WriteAcl
} from './index.js'

/** Ids arrive from HTTP and peers: refuse malformed ones with ERR_INVALID_ID rather than answering "unknown". */
function checkId (id: string): string {
  publicKeyFromKeyId(id)
  return id
}

const noopLogger: Logger = { trace () {}, debug () {}, info () {}, warn () {}, error () {} }

/** The columns of a statement row, derived from a verified statement. */
function rowOf (signed: SignedStatement): Record<string, unknown> {
  const s = signed.statement
  const row: Record<string, unknown> = {
    id: signed.id,
    type: s.type,
    issuer_key: keyIdFromPublicKey(s.issuer),
    issued_at: s.issuedAt,
    expires_at: s.expiresAt,
    subject: '',
    kind: null,
    quota: null,
    labels: null,
    name: null,
    bytes: signed.bytes
  }
  switch (s.type) {
    case 'device-cert':
      row.subject = keyIdFromPublicKey(s.device)
      row.name = s.name ?? null
      row.labels = s.labels == null ? null : JSON.stringify(s.labels)
      break
    case 'device-revocation': row.subject = keyIdFromPublicKey(s.device); break
    case 'key-rotation': row.subject = keyIdFromPublicKey(s.newKey); break
    case 'relationship': row.subject = keyIdFromPublicKey(s.subject); row.kind = s.kind; break
    case 'storage-grant':
      row.subject = keyIdFromPublicKey(s.grantee)
      row.kind = s.layer
      row.quota = s.quotaBytes
      row.labels = s.labels == null ? null : JSON.stringify(s.labels)
      break
    case 'revocation': row.subject = s.target.toString(); break
  }
  return row
}

export class TrustGraphImpl implements TrustGraph {
  private readonly db: Database.Database
  private readonly log: Logger
  private readonly now: () => number
  private readonly skew: number
  private readonly maxBytes: number
  private readonly diagnoseDomain: boolean
  private readonly queries: GraphQueries
  private readonly listeners = new Set<(result: AddResult) => void>()
  private readonly q: Record<string, Database.Statement>
  private readonly store: Database.Transaction<(signed: SignedStatement) => AddResult>

  constructor (init: TrustGraphInit, components: TrustGraphComponents) {
    this.log = components.logger?.forComponent('hearth:trust:graph') ?? noopLogger
    const clock = components.clock
    this.now = clock == null ? Date.now : () => clock.now()
    this.skew = init.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
    this.maxBytes = init.maxStatementBytes ?? MAX_STATEMENT_BYTES
    this.diagnoseDomain = init.diagnoseDomain ?? true
    this.db = new Database(init.path)
    try {
      openSchema(this.db)
    } catch (err) {
      this.db.close()
      throw err
    }
    this.queries = new GraphQueries(this.db, this.now)
    const prep = (sql: string): Database.Statement => this.db.prepare(sql)
    this.q = {
      bytesOf: prep('SELECT bytes FROM statements WHERE id = ?'),
      key: prep('SELECT * FROM keys WHERE key = ?'),
      insert: prep(`INSERT INTO statements (id, type, issuer_key, issuer_agent, key_ok, issued_at, expires_at, subject, subject_agent, kind, quota, labels, name, bytes)
        VALUES (@id, @type, @issuer_key, @issuer_agent, 1, @issued_at, @expires_at, @subject, @subject_agent, @kind, @quota, @labels, @name, @bytes)`),
      counts: prep(`SELECT 1 FROM statements s WHERE s.seq = (SELECT seq FROM statements WHERE id = @id) AND ${countsSql('s')}`),
      page: prep(`SELECT s.seq, s.id, s.type, s.bytes FROM statements s NOT INDEXED WHERE s.seq > @since AND ${countsSql('s')} ORDER BY s.seq LIMIT @limit`),
      maxSeq: prep('SELECT COALESCE(MAX(seq), 0) AS seq FROM statements'),
      prune: prep('DELETE FROM statements WHERE (expires_at IS NOT NULL AND expires_at <= @now) OR key_ok = 0')
    }
    this.store = this.db.transaction((signed: SignedStatement): AddResult => {
      if (this.q.bytesOf.get(signed.id) != null) return { id: signed.id, added: false, valid: this.counts(signed.id), statement: signed }
      const row = rowOf(signed)
      this.checkKeyWindow(signed, row.issuer_key as KeyId)
      row.issuer_agent = this.queries.resolveAgent(row.issuer_key as KeyId)
      row.subject_agent = (signed.statement.type === 'relationship' || signed.statement.type === 'storage-grant')
        ? this.queries.resolveAgent(row.subject as string)
        : null
      this.q.insert.run(row)
      if (signed.statement.type === 'key-rotation') rebuildKeyChains(this.db)
      return { id: signed.id, added: true, valid: this.counts(signed.id), statement: signed }
    })
  }

  add (bytes: Uint8Array): AddResult {
    if (bytes instanceof Uint8Array && bytes.length > this.maxBytes) {
      throw new StatementTooLargeError(`statement is ${bytes.length} bytes, the cap is ${this.maxBytes}`)
    }
    const signed = verifyStatement(bytes, { now: this.now(), clockSkewMs: this.skew, maxBytes: this.maxBytes, diagnoseDomain: this.diagnoseDomain })
    // IMMEDIATE: take the write lock before reading, so another connection to
    // the same file cannot slip a rotation in between the checks and the insert.
    const result = this.store.immediate(signed)
    if (result.added) {
      this.log.debug({ id: result.id, type: signed.statement.type }, 'statement added')
      for (const listener of this.listeners) {
        try {
          listener(result)
        } catch (err) {
          this.log.warn({ err }, 'statement listener failed')
        }
      }
    }
    return result
  }

  /**
   * The one graph check made before storing: the issuing key must not have
   * been rotated away when the statement was issued. More statements can
   * only make a rotation time earlier, so a statement refused here could
   * never count later. Everything else (revocations, agents) is decided at
   * query time, so nodes holding the same statements answer the same.
   */
  private checkKeyWindow (signed: SignedStatement, key: KeyId): void {
    const row = this.q.key.get(key) as KeyRow | undefined
    if (row?.rotated_at == null || row.rotation_out == null) return
    const at = signed.statement.issuedAt
    const earlierRotation = signed.statement.type === 'key-rotation' &&
      (at < row.rotated_at || (at === row.rotated_at && signed.id < row.rotation_out))
    if (at >= row.rotated_at && !earlierRotation) throw new KeyRotatedError('issued by a key at or after it was rotated away')
  }

  /** whether a stored statement counts now */
  private counts (id: StatementId): boolean {
    return this.q.counts.get({ id, now: this.now() }) != null
  }

  has (id: StatementId): boolean {
    return this.q.bytesOf.get(id) != null
  }

  get (id: StatementId): Uint8Array | undefined {
    const row = this.q.bytesOf.get(id) as { bytes: Buffer } | undefined
    return row == null ? undefined : new Uint8Array(row.bytes)
  }

  resolveAgent (key: KeyId): AgentId { return this.queries.resolveAgent(checkId(key)) }
  currentKey (agent: AgentId): KeyId { return this.queries.currentKey(checkId(agent)) }

  agent (agent: AgentId): AgentInfo {
    const id = this.queries.resolveAgent(checkId(agent))
    const keys = this.queries.keys(id)
    return { id, currentKey: keys[keys.length - 1].key, keys, devices: this.queries.devicesOf(id) }
  }

  agentOfDevice (device: DeviceId): DeviceInfo | undefined {
    return this.queries.certificates(checkId(device))[0]
  }

  requireDevice (device: DeviceId): DeviceInfo {
    const info = this.agentOfDevice(device)
    if (info != null) return info
    const problem = this.queries.certificateProblem(device)
    if (problem === 'revoked') throw new KeyRevokedError('the device\'s certificates are revoked')
    if (problem === 'expired') throw new StatementExpiredError('the device\'s certificates have expired')
    throw new DeviceNotCertifiedError('no agent certifies this device')
  }

  devicesOf (agent: AgentId): DeviceInfo[] { return this.queries.devicesOf(checkId(agent)) }
  relationships (agent: AgentId): RelationshipInfo[] { return this.queries.relationships(checkId(agent)) }
  grantsGiven (agent: AgentId): GrantInfo[] { return this.queries.grantsGiven(checkId(agent)) }
  grantsReceived (agent: AgentId): GrantInfo[] { return this.queries.grantsReceived(checkId(agent)) }
  mayWrite (device: DeviceId, acl: WriteAcl): boolean { return isKeyId(device) && this.queries.mayWrite(device, acl) }
  replicationPolicy (node: NodeIdentity): ReplicationTarget[] {
    checkId(node.agentId)
    return this.queries.replicationPolicy(node)
  }

  statements (query: StatementsQuery = {}): StatementsPage {
    const since = Math.max(0, Math.floor(query.since ?? 0))
    const limit = Math.min(MAX_STATEMENTS_PAGE, Math.max(1, Math.floor(query.limit ?? DEFAULT_STATEMENTS_PAGE)))
    const rows = this.q.page.all({ since, limit: limit + 1, now: this.now() }) as Array<{ seq: number, id: string, type: StatementType, bytes: Buffer }>
    const more = rows.length > limit
    const statements: StoredStatement[] = rows.slice(0, limit).map(r => ({ seq: r.seq, id: r.id, type: r.type, bytes: new Uint8Array(r.bytes) }))
    const cursor = more ? statements[statements.length - 1].seq : Math.max(since, (this.q.maxSeq.get() as { seq: number }).seq)
    return { statements, cursor, more }
  }

  graphSnapshot (options: { limit?: number } = {}): GraphSnapshot {
    return graphSnapshot(this.db, this.queries, this.now(), options.limit ?? 10_000)
  }

  prune (): number {
    const { changes } = this.q.prune.run({ now: this.now() })
    if (changes > 0) this.log.debug({ removed: changes }, 'pruned statements that can never count again')
    return changes
  }

  onStatement (listener: (result: AddResult) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  close (): void {
    this.listeners.clear()
    if (this.db.open) this.db.close()
  }
}
