import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { BlobStore, PinLayer } from '@hearth/blobstore'
import type { KeyPair, Logger } from '@hearth/trust'
import { keyIdFromPublicKey } from '@hearth/trust'
import type { BlockExchange } from '../blocks/exchange.js'
import type { NodeStore } from '../node-store.js'
import { ProtocolError, framed, isRecord } from '../p2p/framing.js'
import type { HearthHost } from '../p2p/host.js'
import type { PenaltyBox } from '../p2p/penalty-box.js'
import type { TrustService } from '../trust/service.js'
import { MAX_PIN_SET_BYTES, signPinSet, verifyPinSet } from './pin-sets.js'

export const PINS_PROTOCOL = '/hearth/pins/1.0.0'
const TIMEOUT_MS = 10_000
const MAX_AGENTS_PER_REQUEST = 64
const MAX_RECORDS_PER_REPLY = 256

export type RootState = 'held' | 'fetching' | 'over-quota' | 'failed'

export interface ReplicaView {
  cid: string
  owner: string
  layer: PinLayer
  size: number
  state: RootState
  error?: string
}

export interface ReplicationStatus {
  agent: string | null
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

  constructor (init: { intervalMs: number, labels: Record<string, string>, deviceKey: KeyPair }, c: { host: HearthHost, blobs: BlobStore, trust: TrustService, store: NodeStore, blocks: BlockExchange, penalty: PenaltyBox, log: Logger }) {
    this.intervalMs = init.intervalMs
    this.labels = init.labels
    this.deviceKey = init.deviceKey
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
    return { agent: this.trust.agentId ?? null, policy: this.lastPolicy, roots: [...this.roots.values()], last_run: this.lastRun?.toISOString() ?? null }
  }

  /** Publishes our own pin set when it changed. */
  private async refreshOwnPinSet (agent: string): Promise<void> {
    const mine = (await this.blobs.pins()).filter(p => p.owner == null || p.owner === agent)
    const roots = mine.map(p => ({ cid: p.cid.toString(), layer: p.layer, size: p.size })).sort((a, b) => (a.cid + a.layer).localeCompare(b.cid + b.layer))
    const digest = JSON.stringify([agent, roots])
    if (digest === this.ownDigest) return
    const device = keyIdFromPublicKey(this.deviceKey.publicKey)
    const bytes = signPinSet(this.deviceKey, { agent, device, seq: Date.now(), roots })
    this.store.putPinSet(device, agent, Date.now(), bytes)
    this.ownDigest = digest
  }

  /** One pass: learn the granted agents' pin sets from peers, then fetch or let go. */
  async run (): Promise<void> {
    const agent = this.trust.agentId
    if (agent == null) return
    await this.refreshOwnPinSet(agent)
    const policy = this.trust.graph.replicationPolicy({ agentId: agent, labels: this.labels })
    const owners = [...new Set(policy.map(p => p.agent))].slice(0, MAX_AGENTS_PER_REQUEST)
    if (owners.length > 0) await this.learn(owners)

    const allowed = new Set(policy.map(p => `${p.agent} ${p.layer}`))
    const views: ReplicationStatus['policy'] = []
    for (const entry of policy) {
      const layer = entry.layer as PinLayer
      const wanted = new Map<string, number>()
      for (const rec of this.store.pinSetsOf([entry.agent])) {
        let set
        try { set = verifyPinSet(rec.bytes, this.trust.graph) } catch { continue } // its device lost its certificate
        for (const r of set.roots) if (r.layer === layer) wanted.set(r.cid, r.size)
      }
      const held = await this.blobs.pins({ owner: entry.agent, layer })
      let used = held.reduce((n, p) => n + p.dagBytes, 0)
      for (const pin of held) {
        const cid = pin.cid.toString()
        if (!wanted.has(cid)) {
          await this.blobs.unpin(cid, { layer, owner: entry.agent }).catch(() => {})
          this.roots.delete(`${cid} ${entry.agent} ${layer}`)
          used -= pin.dagBytes
        } else {
          this.roots.set(`${cid} ${entry.agent} ${layer}`, { cid, owner: entry.agent, layer, size: pin.size, state: 'held' })
        }
      }
      const heldSet = new Set(held.map(p => p.cid.toString()))
      for (const [cid, size] of wanted) {
        if (heldSet.has(cid) || !this.running) continue
        const key = `${cid} ${entry.agent} ${layer}`
        if (used + size > entry.quotaBytes) {
          this.roots.set(key, { cid, owner: entry.agent, layer, size, state: 'over-quota' })
          continue
        }
        this.roots.set(key, { cid, owner: entry.agent, layer, size, state: 'fetching' })
        try {
          if (await this.blobs.has(cid)) await this.blobs.pin(cid, { layer, owner: entry.agent })
          else await this.blocks.fetch(cid, { layer, owner: entry.agent })
          used += size
          this.roots.set(key, { cid, owner: entry.agent, layer, size, state: 'held' })
          this.log.info({ root: cid, owner: entry.agent, layer }, 'holding a replica')
        } catch (err: any) {
          this.roots.set(key, { cid, owner: entry.agent, layer, size, state: err?.code === 'ERR_QUOTA_EXCEEDED' ? 'over-quota' : 'failed', error: err?.code ?? err?.message })
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
    this.lastPolicy = views
    this.lastRun = new Date()
  }

  private async learn (agents: string[]): Promise<void> {
    for (const peerId of this.host.getPeers()) {
      const peer = await this.host.peerStore.get(peerId).catch(() => undefined)
      if (peer?.protocols.includes(PINS_PROTOCOL) !== true) continue
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
