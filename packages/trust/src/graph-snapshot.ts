import { SCHEMA_MAJOR, SCHEMA_MINOR } from './constants.js'
import { validCertSql, validSql } from './graph-schema.js'
import type { GraphQueries } from './graph-queries.js'
import type { GraphSnapshot, Labels, RelationshipKind, StorageLayer } from './index.js'
import type Database from 'better-sqlite3'

/**
 * A JSON-ready summary of the valid graph for `GET /trust/graph`. Each list
 * is cut at `limit` entries (and `truncated` set), so the answer stays
 * bounded however large the graph grows.
 */
export function graphSnapshot (db: Database.Database, queries: GraphQueries, now: number, limit: number): GraphSnapshot {
  const cap = Math.max(1, Math.floor(limit))
  let truncated = false
  const take = <T>(rows: T[]): T[] => {
    if (rows.length > cap) { truncated = true; return rows.slice(0, cap) }
    return rows
  }

  const certs = take(db.prepare(`SELECT s.id, s.subject, s.issuer_agent, s.name, s.labels, s.issued_at, s.expires_at FROM statements s
    WHERE s.type = 'device-cert' AND ${validCertSql('s')} ORDER BY s.issuer_agent, s.subject, s.issued_at DESC, s.id LIMIT @limit`)
    .all({ now, limit: cap + 1 }) as Array<{ id: string, subject: string, issuer_agent: string, name: string | null, labels: string | null, expires_at: number }>)
  const rels = take(db.prepare(`SELECT s.id, s.issuer_agent, s.subject_agent, s.kind, s.expires_at FROM statements s NOT INDEXED
    WHERE s.type = 'relationship' AND s.subject_agent != s.issuer_agent AND ${validSql('s')} ORDER BY s.seq LIMIT @limit`)
    .all({ now, limit: cap + 1 }) as Array<{ id: string, issuer_agent: string, subject_agent: string, kind: RelationshipKind, expires_at: number }>)
  const grants = take(db.prepare(`SELECT s.id, s.issuer_agent, s.subject_agent, s.kind, s.quota, s.labels, s.expires_at FROM statements s NOT INDEXED
    WHERE s.type = 'storage-grant' AND s.subject_agent != s.issuer_agent AND ${validSql('s')} ORDER BY s.seq LIMIT @limit`)
    .all({ now, limit: cap + 1 }) as Array<{ id: string, issuer_agent: string, subject_agent: string, kind: StorageLayer, quota: number, labels: string | null, expires_at: number }>)
  const total = (db.prepare('SELECT COUNT(*) AS n FROM statements').get() as { n: number }).n

  const agents = new Map<string, GraphSnapshot['agents'][number]>()
  const agentEntry = (id: string): GraphSnapshot['agents'][number] => {
    let a = agents.get(id)
    if (a == null) {
      const keys = queries.keys(id)
      a = { id, current_key: keys[keys.length - 1].key, keys: keys.map(k => k.key), devices: [] }
      agents.set(id, a)
    }
    return a
  }
  let devices = 0
  for (const c of certs) {
    const a = agentEntry(c.issuer_agent)
    if (a.devices.some(d => d.device === c.subject)) continue
    devices++
    const labels: Labels = c.labels == null ? {} : JSON.parse(c.labels)
    a.devices.push({ device: c.subject, ...(c.name != null ? { name: c.name } : {}), labels, certificate: c.id, expires_at: c.expires_at })
  }
  const pairs = new Set(rels.map(r => `${r.issuer_agent}\n${r.subject_agent}\n${r.kind}`))
  const relationships = rels.map(r => {
    agentEntry(r.issuer_agent)
    agentEntry(r.subject_agent)
    return { id: r.id, from: r.issuer_agent, to: r.subject_agent, kind: r.kind, mutual: pairs.has(`${r.subject_agent}\n${r.issuer_agent}\n${r.kind}`), expires_at: r.expires_at }
  })
  const grantList = grants.map(g => {
    agentEntry(g.issuer_agent)
    agentEntry(g.subject_agent)
    return { id: g.id, grantor: g.issuer_agent, grantee: g.subject_agent, layer: g.kind, quota_bytes: g.quota, labels: g.labels == null ? {} : JSON.parse(g.labels), expires_at: g.expires_at }
  })
  const agentList = take([...agents.values()])
  return {
    schema_version: [SCHEMA_MAJOR, SCHEMA_MINOR],
    generated_at: now,
    counts: { statements: total, agents: agents.size, devices, relationships: relationships.length, grants: grantList.length },
    agents: agentList,
    relationships,
    grants: grantList,
    truncated
  }
}
