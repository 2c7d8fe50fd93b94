import type { DocumentService } from './docs/service.js'
import type { SyncSessionView } from './docs/protocol.js'
import type { BootstrapStatus } from './p2p/bootstrap-dialer.js'
import type { DnsBootstrapStatus } from './p2p/dns-bootstrap.js'
import type { Connection, PeerId } from '@libp2p/interface'
import type { HearthHost } from './p2p/host.js'
import type { PeerClass } from './p2p/inbound-budget.js'
import type { PeerPolicyStats } from './p2p/peer-policy.js'
import type { Health, ReplicationStatus } from './replication/types.js'
import type { HolePunchStats } from './p2p/hole-punch.js'
import type { ReachabilityStatus } from './p2p/reachability.js'

/** What `/p2p/status`, `/ready` and `hearth status` show of a node, and how each part is put together. */

export interface PeerView {
  peer_id: string
  addrs: string[]
  direction: 'inbound' | 'outbound'
  latency_ms: number | null
  connected_at: string
  /** who the peer is to this node, which decides what it may cost (see PeerPolicy) */
  class: PeerClass
  /** direct: at least one connection without a relay; relayed: only through a circuit relay (time- and data-limited) */
  path: 'direct' | 'relayed'
}

export interface RelayStatus {
  /** HEARTH_RELAY: this node relays for linked and bootstrap peers */
  serving: boolean
  /** reservations held on this relay now */
  reservations: number
  /** relays this node holds a reservation on (their peer ids), from its /p2p-circuit addresses */
  reserved_on: string[]
}

export interface P2PStatus {
  schema_version: string
  enabled: boolean
  peer_id: string
  addresses: string[]
  labels: Record<string, string>
  mdns: boolean
  peers: PeerView[]
  bootstrap: BootstrapStatus & { dns: DnsBootstrapStatus | null }
  replication: { agent: string | null, roots: number, held: number, own: Record<Health, number>, last_run: string | null } | null
  sync: SyncStatus
  /** the inbound budget and what strangers were refused (null without p2p) */
  limits: PeerPolicyStats | null
  relay: RelayStatus
  /** whether peers can dial this node (null without p2p) */
  reachability: ReachabilityStatus | null
  /** relayed connections turned direct (HEARTH_HOLE_PUNCH) */
  hole_punch: HolePunchStats & { enabled: boolean }
}

export interface SyncStatus {
  /** false until something needed documents (the store opens lazily) */
  loaded: boolean
  documents: number
  /** documents waiting for a sync message, over all sessions */
  pending: number
  accepted_changes: number
  /** messages from peers the sessions refused (malformed, over a cap, not subscribed, bad changes) */
  rejected_messages: number
  /** messages or change sets the store refused from any source (peers, HTTP, automerge-repo clients): bad signature, writer outside the ACL */
  rejected_by_store: number
  sessions: SyncSessionView[]
  /** automerge-repo clients on /automerge */
  clients: number
}

export interface Readiness {
  ready: boolean
  checks: { store: boolean, blobs: boolean, p2p: boolean | 'disabled', disk: 'ok' | 'full' }
}

/** Open connections, one entry per peer (its addresses together), with the latest round-trip time known */
export function peerViews (host: HearthHost, latency: ReadonlyMap<string, number>, classOf: (peer: PeerId) => PeerClass): PeerView[] {
  const byPeer = new Map<string, PeerView>()
  for (const conn of host.getConnections()) {
    if (conn.status !== 'open') continue
    const id = conn.remotePeer.toString()
    const relayed = isRelayed(conn)
    const view = byPeer.get(id)
    if (view != null) {
      view.addrs.push(conn.remoteAddr.toString())
      if (!relayed) view.path = 'direct'
      continue
    }
    const rtt = conn.rtt ?? latency.get(id)
    byPeer.set(id, {
      peer_id: id,
      addrs: [conn.remoteAddr.toString()],
      direction: conn.direction,
      latency_ms: rtt != null ? Math.round(rtt * 100) / 100 : null,
      connected_at: new Date(conn.timeline.open).toISOString(),
      class: classOf(conn.remotePeer),
      path: relayed ? 'relayed' : 'direct'
    })
  }
  return [...byPeer.values()]
}

/** The document sync figures; `docs` is undefined until the document store was opened */
export function syncStatusOf (docs: DocumentService['loaded'] | undefined, sessions: SyncSessionView[], clients: number): SyncStatus {
  if (docs == null) return { loaded: false, documents: 0, pending: 0, accepted_changes: 0, rejected_messages: 0, rejected_by_store: 0, sessions, clients }
  const engine = docs.engine.stats()
  const store = docs.store.stats()
  return {
    loaded: true,
    documents: store.documents,
    pending: sessions.reduce((n, s) => n + s.pending, 0),
    accepted_changes: engine.acceptedChanges,
    rejected_messages: engine.rejectedMessages,
    rejected_by_store: store.rejectedMessages,
    sessions,
    clients
  }
}

/** The replication manager's status, counted */
export function replicationSummary (s: ReplicationStatus | undefined): P2PStatus['replication'] {
  if (s == null) return null
  const own: Record<Health, number> = { ok: 0, repairing: 0, degraded: 0, unprotected: 0 }
  for (const r of s.own) own[r.state]++
  return { agent: s.agent, roots: s.roots.length, held: s.roots.filter(r => r.state === 'held').length, own, last_run: s.last_run }
}

/** A connection through a circuit relay (time- and data-limited) rather than a direct one */
export function isRelayed (conn: Connection): boolean {
  return conn.limits != null || conn.remoteAddr.toString().includes('/p2p-circuit')
}

/** What this node does with circuit relays, as a relay and as a client */
export function relayStatus (host: HearthHost | undefined): RelayStatus {
  const server = host?.services.relay
  const reservedOn = new Set<string>()
  for (const a of host?.getMultiaddrs() ?? []) {
    // /…/p2p/<relay>/p2p-circuit/p2p/<self>
    const m = /\/p2p\/([^/]+)\/p2p-circuit/.exec(a.toString())
    if (m != null) reservedOn.add(m[1])
  }
  return { serving: server != null, reservations: server?.reservations.size ?? 0, reserved_on: [...reservedOn] }
}
