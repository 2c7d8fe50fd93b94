import { validCertSql, validSql } from './graph-schema.js'
import type { AgentId, DeviceId, KeyId } from './ids.js'
import type {
  AgentInfo, DeviceInfo, GrantInfo, Labels, NodeIdentity, RelationshipInfo, RelationshipKind, ReplicationTarget,
  StorageLayer, WriteAcl
} from './index.js'
import type Database from 'better-sqlite3'

/**
 * The read side of the trust graph. Every query binds `@now` from the clock,
 * so validity is decided at query time, never cached.
 */

interface CertRow { id: string, subject: string, issuer_agent: string, name: string | null, labels: string | null, issued_at: number, expires_at: number }
interface RelRow { id: string, issuer_agent: string, subject_agent: string, kind: RelationshipKind }
interface GrantRow { id: string, issuer_agent: string, subject_agent: string, kind: StorageLayer, quota: number, labels: string | null, issued_at: number, expires_at: number }

const CERT_COLUMNS = 's.id, s.subject, s.issuer_agent, s.name, s.labels, s.issued_at, s.expires_at'
const GRANT_COLUMNS = 's.id, s.issuer_agent, s.subject_agent, s.kind, s.quota, s.labels, s.issued_at, s.expires_at'

function parseLabels (json: string | null): Labels {
  return json == null ? {} : JSON.parse(json)
}

function toDevice (row: CertRow): DeviceInfo {
  const info: DeviceInfo = {
    device: row.subject,
    agent: row.issuer_agent,
    labels: parseLabels(row.labels),
    certificate: row.id,
    issuedAt: row.issued_at,
    expiresAt: row.expires_at
  }
  if (row.name != null) info.name = row.name
  return info
}

function toGrant (row: GrantRow): GrantInfo {
  return {
    id: row.id,
    grantor: row.issuer_agent,
    grantee: row.subject_agent,
    layer: row.kind,
    quotaBytes: row.quota,
    labels: parseLabels(row.labels),
    issuedAt: row.issued_at,
    expiresAt: row.expires_at
  }
}

export function labelsMatch (constraints: Labels, labels: Labels): boolean {
  return Object.entries(constraints).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v)
}

export class GraphQueries {
  private readonly q: Record<string, Database.Statement>

  constructor (db: Database.Database, private readonly now: () => number) {
    const prep = (sql: string): Database.Statement => db.prepare(sql)
    this.q = {
      agentOfKey: prep('SELECT agent FROM keys WHERE key = ?'),
      chain: prep('SELECT k.key, k.rotated_at, k.rotation_out, k.rotation_in, r.issued_at AS activated_at FROM keys k LEFT JOIN statements r ON r.id = k.rotation_in WHERE k.agent = ?'),
      certsOfDevice: prep(`SELECT ${CERT_COLUMNS} FROM statements s INDEXED BY statements_type_subject WHERE s.type = 'device-cert' AND s.subject = @device AND ${validCertSql('s')} ORDER BY s.issued_at DESC, s.id`),
      anyCertOfDevice: prep(`SELECT s.id, s.key_ok, s.expires_at FROM statements s INDEXED BY statements_type_subject WHERE s.type = 'device-cert' AND s.subject = @device`),
      certsOfAgent: prep(`SELECT ${CERT_COLUMNS} FROM statements s INDEXED BY statements_type_issuer WHERE s.type = 'device-cert' AND s.issuer_agent = @agent AND ${validCertSql('s')} ORDER BY s.subject, s.issued_at DESC, s.id`),
      relsOut: prep(`SELECT s.id, s.issuer_agent, s.subject_agent, s.kind FROM statements s INDEXED BY statements_type_issuer WHERE s.type = 'relationship' AND s.issuer_agent = @agent AND s.subject_agent != s.issuer_agent AND ${validSql('s')} ORDER BY s.issued_at DESC, s.id`),
      relsIn: prep(`SELECT s.id, s.issuer_agent, s.subject_agent, s.kind FROM statements s INDEXED BY statements_type_subject_agent WHERE s.type = 'relationship' AND s.subject_agent = @agent AND s.subject_agent != s.issuer_agent AND ${validSql('s')} ORDER BY s.issued_at DESC, s.id`),
      grantsGiven: prep(`SELECT ${GRANT_COLUMNS} FROM statements s INDEXED BY statements_type_issuer WHERE s.type = 'storage-grant' AND s.issuer_agent = @agent AND s.subject_agent != s.issuer_agent AND ${validSql('s')} ORDER BY s.issued_at, s.id`),
      grantsReceived: prep(`SELECT ${GRANT_COLUMNS} FROM statements s INDEXED BY statements_type_subject_agent WHERE s.type = 'storage-grant' AND s.subject_agent = @agent AND s.subject_agent != s.issuer_agent AND ${validSql('s')} ORDER BY s.issued_at, s.id`)
    }
  }

  resolveAgent (key: KeyId): AgentId {
    const row = this.q.agentOfKey.get(key) as { agent: string } | undefined
    return row?.agent ?? key
  }

  /** the agent's keys, first to current, following the chain links */
  keys (agent: AgentId): AgentInfo['keys'] {
    const rows = this.q.chain.all(agent) as Array<{ key: string, rotated_at: number | null, rotation_out: string | null, rotation_in: string | null, activated_at: number | null }>
    const byIncoming = new Map(rows.filter(r => r.rotation_in != null).map(r => [r.rotation_in, r]))
    const out: AgentInfo['keys'] = []
    let row = rows.find(r => r.key === agent)
    if (row == null) return [{ key: agent, activatedAt: null, rotatedAt: null }]
    while (row != null && out.length <= rows.length) {
      out.push({ key: row.key, activatedAt: row.rotation_in == null ? null : row.activated_at, rotatedAt: row.rotated_at })
      row = row.rotation_out == null ? undefined : byIncoming.get(row.rotation_out)
    }
    return out
  }

  currentKey (agent: AgentId): KeyId {
    const keys = this.keys(this.resolveAgent(agent))
    return keys[keys.length - 1].key
  }

  certificates (device: DeviceId): DeviceInfo[] {
    return (this.q.certsOfDevice.all({ device, now: this.now() }) as CertRow[]).map(toDevice)
  }

  /** why a device has no valid certificate: 'revoked', 'expired' or 'none' */
  certificateProblem (device: DeviceId): 'revoked' | 'expired' | 'none' {
    const now = this.now()
    const rows = this.q.anyCertOfDevice.all({ device }) as Array<{ key_ok: number, expires_at: number }>
    const live = rows.filter(r => r.key_ok === 1 && r.expires_at > now)
    if (live.length > 0) return 'revoked'
    return rows.length > 0 ? 'expired' : 'none'
  }

  devicesOf (agent: AgentId): DeviceInfo[] {
    const rows = this.q.certsOfAgent.all({ agent: this.resolveAgent(agent), now: this.now() }) as CertRow[]
    const seen = new Set<string>()
    const out: DeviceInfo[] = []
    for (const row of rows) {
      if (seen.has(row.subject)) continue
      seen.add(row.subject)
      out.push(toDevice(row))
    }
    return out
  }

  relationships (agent: AgentId): RelationshipInfo[] {
    const self = this.resolveAgent(agent)
    const now = this.now()
    const byPair = new Map<string, RelationshipInfo>()
    const entry = (other: string, kind: RelationshipKind): RelationshipInfo => {
      const k = `${other}\n${kind}`
      let info = byPair.get(k)
      if (info == null) {
        info = { agent: other, kind, mutual: false }
        byPair.set(k, info)
      }
      return info
    }
    for (const r of this.q.relsOut.all({ agent: self, now }) as RelRow[]) {
      const info = entry(r.subject_agent, r.kind)
      info.outgoing ??= r.id
    }
    for (const r of this.q.relsIn.all({ agent: self, now }) as RelRow[]) {
      const info = entry(r.issuer_agent, r.kind)
      info.incoming ??= r.id
    }
    const out = [...byPair.values()]
    for (const info of out) info.mutual = info.outgoing != null && info.incoming != null
    return out.sort((a, b) => a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)
  }

  grantsGiven (agent: AgentId): GrantInfo[] {
    return (this.q.grantsGiven.all({ agent: this.resolveAgent(agent), now: this.now() }) as GrantRow[]).map(toGrant)
  }

  grantsReceived (agent: AgentId): GrantInfo[] {
    return (this.q.grantsReceived.all({ agent: this.resolveAgent(agent), now: this.now() }) as GrantRow[]).map(toGrant)
  }

  mayWrite (device: DeviceId, acl: WriteAcl): boolean {
    const allowed = new Set([acl.owner, ...(acl.writers ?? [])].map(a => this.resolveAgent(a)))
    return this.certificates(device).some(c => allowed.has(c.agent))
  }

  replicationPolicy (node: NodeIdentity): ReplicationTarget[] {
    const labels = node.labels ?? {}
    const best = new Map<string, GrantInfo>()
    for (const g of this.grantsGiven(node.agentId)) {
      if (!labelsMatch(g.labels, labels)) continue
      const k = `${g.grantee}\n${g.layer}`
      const held = best.get(k)
      if (held == null || g.quotaBytes > held.quotaBytes || (g.quotaBytes === held.quotaBytes && g.issuedAt > held.issuedAt)) best.set(k, g)
    }
    return [...best.values()]
      .map(g => ({ agent: g.grantee, layer: g.layer, quotaBytes: g.quotaBytes, grantId: g.id, expiresAt: g.expiresAt }))
      .sort((a, b) => a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : a.layer < b.layer ? -1 : a.layer > b.layer ? 1 : 0)
  }
}
