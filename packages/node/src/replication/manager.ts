import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { BlobStore, PinLayer } from '@hearth/blobstore'
import type { KeyPair, Logger } from '@hearth/trust'
import { keyIdFromPublicKey } from '@hearth/trust'
import type { BlockExchange } from '../blocks/exchange.js'
import type { NodeStore } from '../node-store.js'
import { ProtocolError, framed, isRecord } from '../p2p/framing.js'
import { peersSpeaking } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PenaltyBox } from '../p2p/penalty-box.js'
import type { TrustService } from '../trust/service.js'
import { MAX_PIN_SET_BYTES, signPinSet, verifyPinSet } from './pin-sets.js'
import type { PinSet } from './pin-sets.js'
import { chooseHolders, domainOf } from './placement.js'
import type { Candidate } from './placement.js'

export const PINS_PROTOCOL = '/hearth/pins/1.0.0'
const TIMEOUT_MS = 10_000
const MAX_AGENTS_PER_REQUEST = 64
const MAX_RECORDS_PER_REPLY = 256

/** this node's part in a root */
export type RootState = 'held' | 'fetching' | 'over-quota' | 'failed' | 'not-chosen'
/** the root's replication as this node sees it */
export type Health = 'ok' | 'degraded' | 'repairing'

export interface ReplicaView {
  cid: string
  owner: string
  layer: PinLayer
  size: number
  state: RootState
  health: Health
  target: number
  holders: Array<{ device: string, domain: string }>
  error?: string
}

export interface ReplicationStatus {
  agent: string | null
  /** this agent's own pinned roots: their target and the holders that confirm them */
  own: Array<{ cid: string, layer: string, size: number, target: number, holders: Array<{ device: string, domain: string }>, state: Health }>
  policy: Array<{ agent: string, layer: string, quota_bytes: number, used_bytes: number }>
  roots: ReplicaView[]
  last_run: string | null
}

/**
 * Replication follows grants. Each node publishes a signed pin set of its
 * agent's own pins; each node whose agent granted storage to another agent
 * learns that agent's pin sets from its peers and holds, in the granted layer
 * and within the granted quota, every root the agent pinned in that layer;
 * what the agent unpins, or what a revoked or expired grant covered, is let go.
 *
 * Not yet here (next step of the replication issue): a target number of copies
 * spread over failure domains, heartbeats and repair onto another node, and
 * proof-of-holding challenges. Today every node of every granting agent holds
 * a copy.
 */
export class ReplicationManager {
  private readonly host: HearthHost
  private readonly blobs: BlobStore
  private readonly trust: TrustService
  private readonly store: NodeStore
  private readonly blocks: BlockExchange
  private readonly penalty: PenaltyBox
  private readonly deviceKey: KeyPair
  private readonly labels: Record<string, string>
  private readonly intervalMs: number
  private readonly log: Logger
  private timer?: ReturnType<typeof setTimeout>
  private running = false
  private busy?: Promise<void>
  private ownDigest = ''
  private readonly roots = new Map<string, ReplicaView>()
  private lastRun: Date | null = null
  private lastPolicy: ReplicationStatus['policy'] = []
  private ownView: ReplicationStatus['own'] = []

  private readonly targets: Record<PinLayer, number>
  private readonly deviceId: string
  private lastSigned = 0

  constructor (init: { intervalMs: number, labels: Record<string, string>, deviceKey: KeyPair, targets: Record<PinLayer, number> }, c: { host: HearthHost, blobs: BlobStore, trust: TrustService, store: NodeStore, blocks: BlockExchange, penalty: PenaltyBox, log: Logger }) {
    this.intervalMs = init.intervalMs
    this.labels = init.labels
    this.deviceKey = init.deviceKey
    this.targets = init.targets
    this.deviceId = keyIdFromPublicKey(init.deviceKey.publicKey)
    this.host = c.host
    this.blobs = c.blobs
    this.trust = c.trust
    this.store = c.store
    this.blocks = c.blocks
    this.penalty = c.penalty
    this.log = c.log
  }

  async start (): Promise<void> {
    this.running = true
    await this.host.handle(PINS_PROTOCOL, (stream, conn) => { void this.serve(stream, conn) }, { maxInboundStreams: 8, maxOutboundStreams: 8 })
    this.schedule(1000)
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    await this.busy?.catch(() => {})
    await this.host.unhandle(PINS_PROTOCOL).catch(() => {})
  }

  private schedule (delay: number): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.busy = this.run().catch(err => { this.log.warn({ err: err?.message }, 'replication pass failed') })
      void this.busy.finally(() => { this.schedule(this.intervalMs) })
    }, delay)
    this.timer.unref?.()
  }

  status (): ReplicationStatus {
    return { agent: this.trust.agentId ?? null, own: this.ownView, policy: this.lastPolicy, roots: [...this.roots.values()], last_run: this.lastRun?.toISOString() ?? null }
  }

  /** A device whose pin set is older than this is taken for gone. */
  private get ttlMs (): number { return Math.max(4 * this.intervalMs, 2000) }

  /**
   * Signs our pin set — our agent's pins and the replicas we hold for others —
   * when it changed, and at least once per pass as a heartbeat.
   */
  private async refreshOwnPinSet (agent: string): Promise<void> {
    const pins = await this.blobs.pins()
    const roots = pins.filter(p => p.owner == null || p.owner === agent).map(p => ({ cid: p.cid.toString(), layer: p.layer, size: p.size })).sort((a, b) => (a.cid + a.layer).localeCompare(b.cid + b.layer))
    const held = pins.filter(p => p.owner != null && p.owner !== agent).map(p => ({ cid: p.cid.toString(), owner: p.owner!, layer: p.layer })).sort((a, b) => (a.cid + a.owner + a.layer).localeCompare(b.cid + b.owner + b.layer))
    const digest = JSON.stringify([agent, roots, held])
    if (digest === this.ownDigest && Date.now() - this.lastSigned < this.intervalMs) return
    const seq = Math.max(Date.now(), this.lastSigned + 1)
    this.store.putPinSet(this.deviceId, agent, seq, signPinSet(this.deviceKey, { agent, device: this.deviceId, seq, roots, held }))
    this.ownDigest = digest
    this.lastSigned = seq
  }

  /** How our own agent's pins are held elsewhere, from the holders' heartbeats. */
  private viewOwn (agent: string, live: Map<string, PinSet>): ReplicationStatus['own'] {
    const own = live.get(this.deviceId)?.roots ?? []
    return own.map(r => {
      const layer = r.layer as PinLayer
      const candidates = this.candidates(agent, layer)
      const domains = new Map(candidates.map(c => [c.device, domainOf(c.labels)]))
      const holders = [...live.values()]
        .filter(s => s.device !== this.deviceId && s.held.some(h => h.cid === r.cid && h.owner === agent && h.layer === layer))
        .map(s => ({ device: s.device, domain: domains.get(s.device) ?? '' }))
      const target = Math.min(this.targets[layer], candidates.length)
      const state: Health = holders.length >= target ? 'ok' : candidates.length > holders.length ? 'repairing' : 'degraded'
      return { cid: r.cid, layer, size: r.size, target: this.targets[layer], holders, state }
    })
  }

  /** Fresh, still-certified pin sets of the given agents' devices. */
  private liveSets (agents: string[]): Map<string, PinSet> {
    const out = new Map<string, PinSet>()
    const now = Date.now()
    for (const rec of this.store.pinSetsOf(agents)) {
      if (rec.device !== this.deviceId && now - rec.seq > this.ttlMs) continue
      try { out.set(rec.device, verifyPinSet(rec.bytes, this.trust.graph)) } catch { /* its certificate lapsed */ }
    }
    return out
  }

  /** The nodes that may hold `owner`'s pins of `layer`: the devices of agents who granted it that layer, their labels matching the grant's. */
  private candidates (owner: string, layer: PinLayer): Candidate[] {
    const out = new Map<string, Candidate>()
    for (const g of this.trust.graph.grantsReceived(owner)) {
      if (g.layer !== layer) continue
      for (const d of this.trust.graph.devicesOf(g.grantor)) {
        if (Object.entries(g.labels).every(([k, v]) => d.labels[k] === v)) out.set(d.device, { device: d.device, labels: d.device === this.deviceId ? this.labels : d.labels })
      }
    }
    return [...out.values()]
  }

  /** One pass: learn the granted agents' pin sets from peers, then fetch or let go. */
  async run (): Promise<void> {
    const agent = this.trust.agentId
    if (agent == null) return
    await this.refreshOwnPinSet(agent)
    const policy = this.trust.graph.replicationPolicy({ agentId: agent, labels: this.labels })
    const owners = [...new Set(policy.map(p => p.agent))]
    // the owners' pin sets, those of everyone else holding for them (co-holders'
    // heartbeats), and those of whoever holds our own agent's data
    const coHolders = owners.flatMap(o => this.trust.graph.grantsReceived(o).map(g => g.grantor))
    const myHolders = this.trust.graph.grantsReceived(agent).map(g => g.grantor)
    const watched = [...new Set([agent, ...owners, ...coHolders, ...myHolders])].slice(0, MAX_AGENTS_PER_REQUEST)
    if (watched.length > 1) await this.learn(watched)
    const live = this.liveSets(watched)
    this.ownView = this.viewOwn(agent, live)
    const seen = new Set<string>()

    const allowed = new Set(policy.map(p => `${p.agent} ${p.layer}`))
    const views: ReplicationStatus['policy'] = []
    for (const entry of policy) {
      const layer = entry.layer as PinLayer
      const target = this.targets[layer]
      const wanted = new Map<string, number>()
      for (const set of live.values()) {
        if (set.agent !== entry.agent) continue
        for (const r of set.roots) if (r.layer === layer) wanted.set(r.cid, r.size)
      }
      const alive = this.candidates(entry.agent, layer).filter(c => c.device === this.deviceId || live.has(c.device))
      const domains = new Map(alive.map(c => [c.device, domainOf(c.labels)]))
      const holdersOf = (cid: string): string[] => [...live.values()]
        .filter(s => s.held.some(h => h.cid === cid && h.owner === entry.agent && h.layer === layer) && domains.has(s.device))
        .map(s => s.device)
      const held = await this.blobs.pins({ owner: entry.agent, layer })
      let used = held.reduce((n, p) => n + p.dagBytes, 0)
      const heldSet = new Set(held.map(p => p.cid.toString()))

      for (const cid of new Set([...wanted.keys(), ...heldSet])) {
        const key = `${cid} ${entry.agent} ${layer}`
        seen.add(key)
        const size = wanted.get(cid) ?? held.find(p => p.cid.toString() === cid)?.size ?? 0
        const chosen = chooseHolders(cid, alive, target).map(c => c.device)
        const holders = holdersOf(cid)
        const view = (state: RootState, error?: string): ReplicaView => {
          const confirmed = holders.filter(h => h !== this.deviceId).length + (state === 'held' ? 1 : 0)
          return {
            cid, owner: entry.agent, layer, size, state, target,
            health: confirmed >= Math.min(target, alive.length) ? 'ok' : holders.length < chosen.length && chosen.some(d => !holders.includes(d)) ? 'repairing' : 'degraded',
            holders: [...new Set([...holders, ...(state === 'held' ? [this.deviceId] : [])])].map(d => ({ device: d, domain: domains.get(d) ?? '' })),
            ...(error != null ? { error } : {})
          }
        }
        if (heldSet.has(cid)) {
          // let go of what the owner unpinned, or what enough chosen others already confirm
          const othersChosenHolding = chosen.filter(d => d !== this.deviceId && holders.includes(d)).length
          if (!wanted.has(cid) || (!chosen.includes(this.deviceId) && othersChosenHolding >= Math.min(target, chosen.length))) {
            await this.blobs.unpin(cid, { layer, owner: entry.agent }).catch(() => {})
            used -= held.find(p => p.cid.toString() === cid)?.dagBytes ?? 0
            if (wanted.has(cid)) this.roots.set(key, view('not-chosen'))
            else this.roots.delete(key)
          } else {
            this.roots.set(key, view('held'))
          }
          continue
        }
        if (!chosen.includes(this.deviceId)) { this.roots.set(key, view('not-chosen')); continue }
        if (!this.running) break
        if (used + size > entry.quotaBytes) { this.roots.set(key, view('over-quota')); continue }
        this.roots.set(key, view('fetching'))
        try {
          if (await this.blobs.has(cid)) await this.blobs.pin(cid, { layer, owner: entry.agent })
          else await this.blocks.fetch(cid, { layer, owner: entry.agent })
          used += size
          this.roots.set(key, view('held'))
          this.log.info({ root: cid, owner: entry.agent, layer }, 'holding a replica')
        } catch (err: any) {
          this.roots.set(key, view(err?.code === 'ERR_QUOTA_EXCEEDED' ? 'over-quota' : 'failed', err?.code ?? err?.message))
        }
      }
      views.push({ agent: entry.agent, layer, quota_bytes: entry.quotaBytes, used_bytes: used })
    }
    // grants that ended: let their content go
    for (const pin of await this.blobs.pins()) {
      if (pin.owner == null || pin.owner === agent || allowed.has(`${pin.owner} ${pin.layer}`)) continue
      await this.blobs.unpin(pin.cid, { layer: pin.layer, owner: pin.owner }).catch(() => {})
      this.roots.delete(`${pin.cid.toString()} ${pin.owner} ${pin.layer}`)
    }
    for (const key of this.roots.keys()) if (!seen.has(key)) this.roots.delete(key)
    this.lastPolicy = views
    this.lastRun = new Date()
  }

  private async learn (agents: string[]): Promise<void> {
    for (const peerId of await peersSpeaking(this.host, PINS_PROTOCOL)) {
      try {
        await this.ask(peerId, agents)
      } catch (err: any) {
        this.log.debug({ peer: peerId.toString(), err: err?.message }, 'could not learn pin sets')
      }
    }
  }

  private async ask (peerId: PeerId, agents: string[]): Promise<void> {
    const stream = await this.host.dialProtocol(peerId, PINS_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    const f = framed(stream, { maxBytes: MAX_PIN_SET_BYTES * 4, timeoutMs: TIMEOUT_MS })
    try {
      await f.write({ type: 'get', agents })
      const reply = await f.read()
      await f.close()
      if (!isRecord(reply) || !Array.isArray(reply.records) || reply.records.length > MAX_RECORDS_PER_REPLY) throw new ProtocolError('bad pin-set reply')
      for (const bytes of reply.records) {
        if (!(bytes instanceof Uint8Array)) throw new ProtocolError('pin set is not bytes')
        try {
          const set = verifyPinSet(bytes, this.trust.graph)
          this.store.putPinSet(set.device, set.agent, set.seq, bytes)
        } catch (err: any) {
          // a pin set of a device we have not seen certified yet is not an offence
          if (err?.message !== 'the device is not certified for that agent') this.penalty.strike(peerId.toString(), 'bad pin set')
        }
      }
    } catch (err: any) {
      if (err instanceof ProtocolError) this.penalty.strike(peerId.toString(), err.message)
      f.abort(err?.message ?? 'error')
      throw err
    }
  }

  private async serve (stream: Stream, conn: Connection): Promise<void> {
    const f = framed(stream, { maxBytes: 64 * 1024, timeoutMs: TIMEOUT_MS })
    try {
      const msg = await f.read()
      if (!isRecord(msg) || msg.type !== 'get' || !Array.isArray(msg.agents) || msg.agents.length > MAX_AGENTS_PER_REQUEST || !msg.agents.every(a => typeof a === 'string')) {
        throw new ProtocolError('bad pin-set request')
      }
      const records = this.store.pinSetsOf(msg.agents as string[]).slice(0, MAX_RECORDS_PER_REPLY).map(r => r.bytes)
      await f.write({ type: 'records', records })
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.penalty.strike(conn.remotePeer.toString(), err.message)
      f.abort(err?.message ?? 'error')
    }
  }
}
