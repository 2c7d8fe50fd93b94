import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { StorageUsage } from '@hearth/blobstore'
import type { HearthNode } from '../node.js'
import { HEALTHS } from '../replication/types.js'
import { isRelayed } from '../status.js'

/**
 * The daemon's Prometheus registry (never the global one, so several nodes
 * can live in one process in tests): process metrics, HTTP metrics, and
 * gauges read from the node when scraped.
 */
export interface ApiMetrics {
  registry: Registry
  httpRequests: Counter<'method' | 'route' | 'status'>
  httpDuration: Histogram<'method' | 'route'>
}

export function createMetrics (node: HearthNode, opts: { logDropped?: () => number } = {}): ApiMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // prom-client's counts of active handles, requests and resources are gauges
  // named _total, which Prometheus reads as counters; the same counts by type
  // (nodejs_active_handles{type} and friends) stay
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)

  const httpRequests = new Counter({
    name: 'hearth_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry]
  })
  const httpDuration = new Histogram({
    name: 'hearth_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry]
  })
  new Gauge({
    name: 'hearth_p2p_peers',
    help: 'peers with an open libp2p connection',
    registers: [registry],
    collect () { this.set(node.host?.getPeers().length ?? 0) }
  })
  new Gauge({
    name: 'hearth_p2p_connections',
    help: 'open libp2p connections by direction',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect () {
      const conns = node.host?.getConnections() ?? []
      this.set({ direction: 'inbound' }, conns.filter(c => c.direction === 'inbound').length)
      this.set({ direction: 'outbound' }, conns.filter(c => c.direction === 'outbound').length)
    }
  })
  new Gauge({
    name: 'hearth_bootstrap_peers',
    help: 'configured bootstrap addresses, and how many are connected',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const s = node.p2pStatus().bootstrap
      this.set({ state: 'configured' }, s.configured.length)
      this.set({ state: 'connected' }, s.connected.length)
    }
  })
  new Gauge({
    name: 'hearth_ready',
    help: '1 when the node is ready to serve',
    registers: [registry],
    collect () { this.set(node.readiness().ready ? 1 : 0) }
  })
  new Gauge({
    name: 'hearth_start_time_seconds',
    help: 'when this daemon started, unix seconds',
    registers: [registry],
    collect () { this.set(node.startedAt.getTime() / 1000) }
  })
  // one store query per scrape, shared by the storage gauges
  let cached: { at: number, value: Promise<StorageUsage> } | undefined
  const usage = async (): Promise<StorageUsage> => {
    if (cached == null || Date.now() - cached.at > 1000) cached = { at: Date.now(), value: node.blobs.usage() }
    return await cached.value
  }
  new Gauge({
    name: 'hearth_storage_used_bytes',
    help: 'bytes charged to each storage layer',
    labelNames: ['layer'] as const,
    registers: [registry],
    async collect () {
      for (const [layer, u] of Object.entries((await usage()).layers)) this.set({ layer }, u.used_bytes)
    }
  })
  new Gauge({
    name: 'hearth_disk_free_bytes',
    help: 'bytes free for the daemon on the data folder\'s file system',
    registers: [registry],
    collect () { const f = node.disk?.free(); if (f != null) this.set(f) }
  })
  new Gauge({
    name: 'hearth_disk_full',
    help: '1 while the disk is full: writes answer 507 ERR_DISK_FULL until space is freed',
    registers: [registry],
    collect () { this.set(node.disk?.full === true ? 1 : 0) }
  })
  new Counter({
    name: 'hearth_disk_full_events_total',
    help: 'times the disk was found full since start',
    registers: [registry],
    collect () { this.reset(); this.inc(node.disk?.fullEvents ?? 0) }
  })
  new Counter({
    name: 'hearth_log_lines_dropped_total',
    help: 'log lines dropped since start because stdout could not take them (full disk, a stalled reader)',
    registers: [registry],
    collect () { this.reset(); this.inc(opts.logDropped?.() ?? 0) }
  })
  new Gauge({
    name: 'hearth_storage_quota_bytes',
    help: 'hard quota of each storage layer (absent when unlimited)',
    labelNames: ['layer'] as const,
    registers: [registry],
    collect () {
      this.reset()
      for (const [layer, q] of Object.entries(node.config.quotas)) if (q != null) this.set({ layer }, q)
    }
  })
  new Gauge({
    name: 'hearth_storage_roots',
    help: 'blobs held in each storage layer',
    labelNames: ['layer'] as const,
    registers: [registry],
    async collect () {
      for (const [layer, u] of Object.entries((await usage()).layers)) this.set({ layer }, u.roots)
    }
  })
  new Gauge({
    name: 'hearth_blocks',
    help: 'stored blocks: all, bytes, waiting for GC, quarantined',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect () {
      const { blocks } = await usage()
      this.set({ state: 'stored' }, blocks.count)
      this.set({ state: 'unreferenced' }, blocks.unreferenced)
      this.set({ state: 'quarantined' }, blocks.quarantined)
    }
  })
  new Counter({
    name: 'hearth_page_cache_dropped_bytes_total',
    help: 'bytes of downloaded blocks (replicas, read-through fills) dropped from the OS page cache once on disk, since start',
    registers: [registry],
    async collect () { this.reset(); this.inc((await usage()).database.page_cache_dropped_bytes) }
  })
  new Counter({
    name: 'hearth_scrub_corrupt_blocks_total',
    help: 'blocks the integrity scrub found corrupt since start',
    registers: [registry],
    collect () { this.reset(); this.inc(node.blobs.scrubStatus().corrupt) }
  })
  new Counter({
    name: 'hearth_trust_statements_total',
    help: 'statements received from peers, and of those rejected, since start',
    labelNames: ['result'] as const,
    registers: [registry],
    collect () {
      this.reset()
      const st = node.trustExchange?.stats
      this.inc({ result: 'received' }, st?.received ?? 0)
      this.inc({ result: 'rejected' }, st?.rejected ?? 0)
    }
  })
  new Counter({
    name: 'hearth_blocks_exchanged_total',
    help: 'blocks sent to and received from peers, refused requests and corrupt blocks, since start',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect () {
      this.reset()
      const st = node.blockExchange?.stats
      this.inc({ kind: 'sent' }, st?.blocksSent ?? 0)
      this.inc({ kind: 'received' }, st?.blocksReceived ?? 0)
      this.inc({ kind: 'refused' }, st?.refused ?? 0)
      this.inc({ kind: 'corrupt' }, st?.corrupt ?? 0)
    }
  })
  new Gauge({
    name: 'hearth_replicas',
    help: 'roots this node holds or tries to hold for other agents, by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      this.reset()
      for (const r of node.replication?.status().roots ?? []) this.inc({ state: r.state })
    }
  })
  new Gauge({
    name: 'hearth_own_roots',
    help: 'roots this device pinned by replication health: ok (target met by proven copies elsewhere), repairing, degraded (too few nodes can hold it), unprotected (no proven copy elsewhere)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      this.reset()
      for (const state of HEALTHS) this.set({ state }, 0)
      for (const r of node.replication?.status().own ?? []) this.inc({ state: r.state })
    }
  })
  new Gauge({
    name: 'hearth_replica_holders',
    help: 'holders of this agent\'s roots: confirmed ones count toward the target, unconfirmed ones failed a holding proof',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      let confirmed = 0
      let unconfirmed = 0
      for (const r of node.replication?.status().own ?? []) for (const h of r.holders) { if (h.confirmed) confirmed++; else unconfirmed++ }
      this.set({ state: 'confirmed' }, confirmed)
      this.set({ state: 'unconfirmed' }, unconfirmed)
    }
  })
  new Counter({
    name: 'hearth_proof_challenges_total',
    help: 'holding-proof challenges this node sent since start, by result (ok passes; busy says nothing; the rest are failures)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect () {
      this.reset()
      for (const [result, n] of Object.entries(node.replication?.proofs.stats.sent ?? {})) this.inc({ result }, n)
    }
  })
  new Counter({
    name: 'hearth_proof_answers_total',
    help: 'holding-proof challenges this node answered since start: ok, missing (it lacked the block), refused, busy (throttled), invalid',
    labelNames: ['answer'] as const,
    registers: [registry],
    collect () {
      this.reset()
      for (const [answer, n] of Object.entries(node.replication?.proofs.stats.answered ?? {})) this.inc({ answer }, n)
    }
  })
  new Counter({
    name: 'hearth_peer_bans_total',
    help: 'peers banned for misbehaving since start',
    registers: [registry],
    collect () { this.reset(); this.inc(node.penalty.bans) }
  })
  new Gauge({
    name: 'hearth_p2p_connections_by_class',
    help: 'open peer connections by who the peer is to this node: linked, bootstrap, known (a certified device of an unlinked agent), stranger',
    labelNames: ['class'] as const,
    registers: [registry],
    collect () {
      for (const [cls, n] of Object.entries(node.peerLimits()?.connections ?? {})) this.set({ class: cls }, n)
    }
  })
  new Gauge({
    name: 'hearth_p2p_connections_by_path',
    help: 'open peer connections: direct, or through a circuit relay',
    labelNames: ['path'] as const,
    registers: [registry],
    collect () {
      const conns = node.host?.getConnections().filter(c => c.status === 'open') ?? []
      const relayed = conns.filter(isRelayed).length
      this.set({ path: 'direct' }, conns.length - relayed)
      this.set({ path: 'relayed' }, relayed)
    }
  })
  new Gauge({
    name: 'hearth_relay_reservations',
    help: 'as a relay (HEARTH_RELAY): reservations held now; as a client (HEARTH_RELAY_RESERVE): relays this node listens through',
    labelNames: ['role'] as const,
    registers: [registry],
    collect () {
      const r = node.p2pStatus().relay
      this.set({ role: 'relay' }, r.reservations)
      this.set({ role: 'client' }, r.reserved_on.length)
    }
  })
  new Gauge({
    name: 'hearth_p2p_reachability',
    help: 'whether peers can dial this node: 1 for the state it is in (public, private, unknown), 0 for the others',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const r = node.p2pStatus().reachability?.reachability
      for (const state of ['public', 'private', 'unknown'] as const) this.set({ state }, r === state ? 1 : 0)
    }
  })
  new Counter({
    name: 'hearth_hole_punch_total',
    help: 'hole punching since start: simultaneous dials tried (attempt), relayed connections that became direct (success), that stayed relayed after every try (failure)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect () {
      const h = node.p2pStatus().hole_punch
      this.reset()
      this.inc({ result: 'attempt' }, h.attempts)
      this.inc({ result: 'success' }, h.successes)
      this.inc({ result: 'failure' }, Object.values(h.failures).reduce((a, b) => a + b, 0))
    }
  })
  new Gauge({
    name: 'hearth_p2p_inbound_budget_bytes',
    help: 'the memory budget for partly received frames from peers (HEARTH_P2P_INBOUND_BUDGET): total, used, used by strangers',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const b = node.peerLimits()?.budget
      if (b == null) return
      this.set({ state: 'total' }, b.total_bytes)
      this.set({ state: 'used' }, b.used_bytes)
      this.set({ state: 'strangers_used' }, b.strangers_used_bytes)
    }
  })
  new Counter({
    name: 'hearth_p2p_refusals_total',
    help: 'what peers were refused since start: frames with no room in the budget, frames cut for arriving too slowly, streams and connections refused to strangers, idle strangers closed, relay reservations and circuits refused, addresses refused to strangers after repeated bans',
    labelNames: ['what'] as const,
    registers: [registry],
    collect () {
      const l = node.peerLimits()
      if (l == null) return
      this.reset()
      this.inc({ what: 'frame_no_room' }, l.budget.refused)
      this.inc({ what: 'frame_timed_out' }, l.frames_timed_out)
      this.inc({ what: 'stream_to_stranger' }, l.streams_refused)
      this.inc({ what: 'stranger_connection' }, l.connections_refused)
      this.inc({ what: 'stranger_pruned' }, l.strangers_pruned)
      this.inc({ what: 'relay_reservation' }, l.reservations_refused)
      this.inc({ what: 'relay_circuit' }, l.circuits_refused)
      this.inc({ what: 'address_banned' }, l.addresses_banned)
    }
  })
  // one status read per scrape, shared by the document gauges
  let syncCached: { at: number, value: ReturnType<HearthNode['syncStatus']> } | undefined
  const sync = (): ReturnType<HearthNode['syncStatus']> => {
    if (syncCached == null || Date.now() - syncCached.at > 1000) syncCached = { at: Date.now(), value: node.syncStatus() }
    return syncCached.value
  }
  new Gauge({
    name: 'hearth_documents',
    help: 'Automerge documents stored here (0 until the document store is first used)',
    registers: [registry],
    collect () { this.set(sync().documents) }
  })
  new Gauge({
    name: 'hearth_sync_sessions',
    help: 'document sync sessions: with peer daemons, and automerge-repo clients on /automerge',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect () {
      const s = sync()
      this.set({ kind: 'peer' }, s.sessions.length)
      this.set({ kind: 'client' }, s.clients)
    }
  })
  new Gauge({
    name: 'hearth_sync_pending_documents',
    help: 'documents waiting for a sync message, over all peer sessions',
    registers: [registry],
    collect () { this.set(sync().pending) }
  })
  new Counter({
    name: 'hearth_sync_changes_total',
    help: 'changes accepted from peers, and messages refused (by the sessions: malformed, over a cap; by the store: bad signature, writer outside the ACL), since start',
    labelNames: ['result'] as const,
    registers: [registry],
    collect () {
      this.reset()
      const s = sync()
      this.inc({ result: 'accepted' }, s.accepted_changes)
      this.inc({ result: 'rejected_by_session' }, s.rejected_messages)
      this.inc({ result: 'rejected_by_store' }, s.rejected_by_store)
    }
  })
  return { registry, httpRequests, httpDuration }
}
