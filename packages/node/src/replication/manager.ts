import type { BlobStore, PinLayer } from '@hearth/blobstore'
import type { KeyPair, Logger } from '@hearth/trust'
import { keyIdFromPublicKey } from '@hearth/trust'
import type { BlockExchange } from '../blocks/exchange.js'
import type { NodeStore } from '../node-store.js'
import type { HearthHost } from '../p2p/host.js'
import type { PenaltyBox } from '../p2p/penalty-box.js'
import type { TrustService } from '../trust/service.js'
import { HolderBook } from './holders.js'
import { MAX_AGENTS_PER_REQUEST, PinSetExchange } from './pin-set-exchange.js'
import { MAX_PIN_SET_FAILURES, signPinSet } from './pin-sets.js'
import { chooseHolders } from './placement.js'
import { ProofService } from './proofs.js'
import { ReplicaCare } from './replica-care.js'
import type { Health, OwnRootView, ReplicaView, ReplicationStatus, RootState } from './types.js'

export { PINS_PROTOCOL } from './pin-set-exchange.js'
export type { Health, HolderView, OwnRootView, ReplicaView, ReplicationStatus, RootState } from './types.js'

export interface ReplicationManagerInit {
  intervalMs: number
  proofIntervalMs: number
  labels: Record<string, string>
  deviceKey: KeyPair
  targets: Record<PinLayer, number>
}

export interface ReplicationManagerComponents {
  host: HearthHost
  blobs: BlobStore
  trust: TrustService
  store: NodeStore
  blocks: BlockExchange
  penalty: PenaltyBox
  log: Logger
}

/**
 * Replication follows grants. Each pass, this node:
 *
 * 1. signs its pin set — its agent's own pins, the replicas it holds for
 *    others, and the holders whose last holding proof to it failed — which
 *    doubles as a heartbeat;
 * 2. learns the pin sets of the agents it grants storage to, of their other
 *    holders, and of whoever holds its own agent's data;
 * 3. for each root a granted agent pinned in a granted layer, chooses the
 *    target number of holders among the live nodes that may hold it
 *    (rendezvous hashing, spread over failure domains), leaving out holders
 *    whose proofs of that root failed; fetches the root when chosen (within
 *    the grant's quota), and lets a copy go when the owner unpinned it, the
 *    grant ended, or enough chosen others confirm it. A holder that goes
 *    quiet or fails its proofs is thus replaced by the next chosen node;
 * 4. challenges, in the background, the holders it counts: its own roots'
 *    holders, and the co-holders of the replicas it holds (see ProofService).
 */
export class ReplicationManager {
  readonly proofs: ProofService
  private readonly care: ReplicaCare
  private readonly pinSets: PinSetExchange
  private readonly c: ReplicationManagerComponents
  private readonly init: ReplicationManagerInit
  private readonly deviceId: string
  private timer?: ReturnType<typeof setTimeout>
  private heartbeatTimer?: ReturnType<typeof setInterval>
  /** signing our pin set, one at a time (the pass and the heartbeat both do it) */
  private signing: Promise<void> = Promise.resolve()
  private running = false
  private busy?: Promise<void>
  private ownDigest = ''
  private lastSigned = 0
  private readonly roots = new Map<string, ReplicaView>()
  private lastRun: Date | null = null
  private lastPolicy: ReplicationStatus['policy'] = []
  private ownView: OwnRootView[] = []

  constructor (init: ReplicationManagerInit, components: ReplicationManagerComponents) {
    this.init = init
    this.c = components
    this.deviceId = keyIdFromPublicKey(init.deviceKey.publicKey)
    this.pinSets = new PinSetExchange(components)
    this.proofs = new ProofService({ intervalMs: init.proofIntervalMs, forgetMs: Math.max(3 * init.intervalMs, 2000) }, components)
    this.care = new ReplicaCare(components)
  }

  async start (): Promise<void> {
    this.running = true
    await this.pinSets.start()
    await this.proofs.start()
    this.schedule(1000)
    // the pin set is the heartbeat: re-signed every interval even while a long pass is busy fetching
    this.heartbeatTimer = setInterval(() => {
      const agent = this.c.trust.agentId
      if (agent != null) void this.refreshOwnPinSet(agent).catch(err => { this.c.log.warn({ err: err?.message }, 'could not sign the pin set') })
    }, this.init.intervalMs)
    this.heartbeatTimer.unref?.()
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    clearInterval(this.heartbeatTimer)
    await this.busy?.catch(() => {})
    await this.proofs.stop()
    await this.pinSets.stop()
  }

  private schedule (delay: number): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.busy = this.run().catch(err => { this.c.log.warn({ err: err?.message }, 'replication pass failed') })
      void this.busy.finally(() => { this.schedule(this.init.intervalMs) })
    }, delay)
    this.timer.unref?.()
  }

  status (): ReplicationStatus {
    return { agent: this.c.trust.agentId ?? null, own: this.ownView, policy: this.lastPolicy, roots: [...this.roots.values()], last_run: this.lastRun?.toISOString() ?? null }
  }

  /** A device whose pin set is older than this is taken for gone. */
  private get ttlMs (): number { return Math.max(4 * this.init.intervalMs, 5000) }

  /** Signs our pin set when it changed, and at least once per interval as a heartbeat. */
  private async refreshOwnPinSet (agent: string): Promise<void> {
    const next = this.signing.then(async () => { await this.signOwnPinSet(agent) })
    this.signing = next.catch(() => {})
    await next
  }

  private async signOwnPinSet (agent: string): Promise<void> {
    const pins = await this.c.blobs.pins()
    const roots = pins.filter(p => p.owner == null || p.owner === agent).map(p => ({ cid: p.cid.toString(), layer: p.layer, size: p.size })).sort((a, b) => (a.cid + a.layer).localeCompare(b.cid + b.layer))
    const held = pins.filter(p => p.owner != null && p.owner !== agent).map(p => ({ cid: p.cid.toString(), owner: p.owner!, layer: p.layer })).sort((a, b) => (a.cid + a.owner + a.layer).localeCompare(b.cid + b.owner + b.layer))
    const failed = this.proofs.failing(MAX_PIN_SET_FAILURES)
    const digest = JSON.stringify([agent, roots, held, failed.map(f => [f.device, f.root, f.result])])
    if (digest === this.ownDigest && Date.now() - this.lastSigned < this.init.intervalMs) return
    const seq = Math.max(Date.now(), this.lastSigned + 1)
    this.c.store.putPinSet(this.deviceId, agent, seq, signPinSet(this.init.deviceKey, { agent, device: this.deviceId, seq, roots, held, failed }))
    this.ownDigest = digest
    this.lastSigned = seq
  }

  /** Devices whose word about holders of `owner`'s roots in `layer` counts: the owner's own devices and the candidates. */
  private reporters (book: HolderBook, owner: string, layer: PinLayer): Set<string> {
    return new Set([...this.c.trust.graph.devicesOf(owner).map(d => d.device), ...book.candidates(owner, layer).map(c => c.device)])
  }

  /** How our own agent's pins are held elsewhere; queues a proof of each holder. */
  private viewOwn (agent: string, book: HolderBook, pairs: Array<{ device: string, root: string }>): OwnRootView[] {
    return (book.live.get(this.deviceId)?.roots ?? []).map(r => {
      const layer = r.layer as PinLayer
      const candidates = book.candidates(agent, layer)
      const domains = HolderBook.domains(candidates)
      const failed = book.failedHolders(r.cid, this.reporters(book, agent, layer))
      const claimed = book.claimants(r.cid, agent, layer).filter(d => d !== this.deviceId)
      for (const device of claimed) pairs.push({ device, root: r.cid })
      const holders = claimed.map(d => book.holderView(d, r.cid, domains, failed))
      const confirmed = holders.filter(h => h.confirmed).length
      const target = Math.min(this.init.targets[layer], candidates.length)
      const eligible = candidates.filter(c => !failed.has(c.device)).length
      const state: Health = confirmed >= target ? 'ok' : eligible > confirmed ? 'repairing' : 'degraded'
      return { cid: r.cid, layer, size: r.size, target: this.init.targets[layer], holders, state }
    })
  }

  /** One pass: learn pin sets, fetch or let go of replicas, queue holding proofs. */
  async run (): Promise<void> {
    const agent = this.c.trust.agentId
    if (agent == null) return
    await this.refreshOwnPinSet(agent)
    const graph = this.c.trust.graph
    const policy = graph.replicationPolicy({ agentId: agent, labels: this.init.labels })
    const owners = [...new Set(policy.map(p => p.agent))]
    // the owners' pin sets, those of everyone else holding for them (co-holders'
    // heartbeats), and those of whoever holds our own agent's data
    const coHolders = owners.flatMap(o => graph.grantsReceived(o).map(g => g.grantor))
    const myHolders = graph.grantsReceived(agent).map(g => g.grantor)
    const watched = [...new Set([agent, ...owners, ...coHolders, ...myHolders])].slice(0, MAX_AGENTS_PER_REQUEST)
    if (watched.length > 1) await this.pinSets.learn(watched)
    const book = new HolderBook(HolderBook.load(this.c.store, graph, watched, this.deviceId, this.ttlMs), { device: this.deviceId, labels: this.init.labels }, graph, (d, r) => this.proofs.record(d, r))
    const pairs: Array<{ device: string, root: string }> = []
    this.ownView = this.viewOwn(agent, book, pairs)
    const seen = new Set<string>()
    const allowed = new Set(policy.map(p => `${p.agent} ${p.layer}`))
    const views: ReplicationStatus['policy'] = []
    for (const entry of policy) {
      if (!this.running) break
      const used = await this.replicate(entry.agent, entry.layer as PinLayer, entry.quotaBytes, book, seen, pairs)
      views.push({ agent: entry.agent, layer: entry.layer, quota_bytes: entry.quotaBytes, used_bytes: used })
    }
    // grants that ended: let their content go
    for (const pin of await this.c.blobs.pins()) {
      if (pin.owner == null || pin.owner === agent || allowed.has(`${pin.owner} ${pin.layer}`)) continue
      await this.c.blobs.unpin(pin.cid, { layer: pin.layer, owner: pin.owner }).catch(() => {})
      this.roots.delete(`${pin.cid.toString()} ${pin.owner} ${pin.layer}`)
    }
    for (const key of this.roots.keys()) if (!seen.has(key)) this.roots.delete(key)
    this.proofs.suspect.clear()
    this.proofs.check(pairs)
    this.lastPolicy = views
    this.lastRun = new Date()
  }

  /** One grant: every root `owner` pinned in `layer`. Returns the bytes it uses afterwards. */
  private async replicate (owner: string, layer: PinLayer, quotaBytes: number, book: HolderBook, seen: Set<string>, pairs: Array<{ device: string, root: string }>): Promise<number> {
    const target = this.init.targets[layer]
    const wanted = new Map<string, number>()
    for (const set of book.live.values()) {
      if (set.agent !== owner) continue
      for (const r of set.roots) if (r.layer === layer) wanted.set(r.cid, r.size)
    }
    const alive = book.candidates(owner, layer).filter(c => c.device === this.deviceId || book.live.has(c.device))
    const domains = HolderBook.domains(alive)
    const reporters = this.reporters(book, owner, layer)
    const held = await this.c.blobs.pins({ owner, layer })
    let used = held.reduce((n, p) => n + p.dagBytes, 0)
    const heldSet = new Set(held.map(p => p.cid.toString()))

    for (const cid of new Set([...wanted.keys(), ...heldSet])) {
      const key = `${cid} ${owner} ${layer}`
      seen.add(key)
      const size = wanted.get(cid) ?? held.find(p => p.cid.toString() === cid)?.size ?? 0
      const failed = book.failedHolders(cid, reporters)
      const eligible = alive.filter(c => !failed.has(c.device))
      const chosen = chooseHolders(cid, eligible, target).map(c => c.device)
      const claimed = book.claimants(cid, owner, layer).filter(d => domains.has(d))
      const confirmed = claimed.filter(d => !failed.has(d))
      const view = (state: RootState, error?: string): ReplicaView => {
        const count = confirmed.filter(h => h !== this.deviceId).length + (state === 'held' ? 1 : 0)
        const holders = [...new Set([...claimed.filter(d => d !== this.deviceId), ...(state === 'held' ? [this.deviceId] : [])])]
        return {
          cid, owner, layer, size, state, target,
          health: count >= Math.min(target, eligible.length) ? 'ok' : chosen.some(d => !confirmed.includes(d)) ? 'repairing' : 'degraded',
          holders: holders.map(d => book.holderView(d, cid, domains, failed)),
          ...(error != null ? { error } : {})
        }
      }
      if (heldSet.has(cid)) {
        const dagBytes = held.find(p => p.cid.toString() === cid)?.dagBytes ?? 0
        // a block the scrub or a read found corrupt is fetched again from a peer, in place
        if (await this.care.quarantined(cid) && !await this.care.heal(cid, owner, layer)) {
          this.roots.set(key, view('failed', 'ERR_REPLICA_DAMAGED'))
          continue
        }
        // told (by a failed challenge, ours or reported) that our copy is broken: count its blocks, and drop it if some are gone
        if ((failed.has(this.deviceId) || this.proofs.suspect.has(cid)) && !await this.care.intact(cid)) {
          await this.care.dropDamaged(cid, owner, layer)
          used -= dagBytes
          this.roots.set(key, view('failed', 'ERR_REPLICA_DAMAGED'))
          continue
        }
        // let go of what the owner unpinned, or what enough chosen others already confirm
        const othersChosenHolding = chosen.filter(d => d !== this.deviceId && confirmed.includes(d)).length
        if (!wanted.has(cid) || (!chosen.includes(this.deviceId) && othersChosenHolding >= Math.min(target, chosen.length))) {
          await this.c.blobs.unpin(cid, { layer, owner }).catch(() => {})
          used -= dagBytes
          if (wanted.has(cid)) this.roots.set(key, view('not-chosen'))
          else this.roots.delete(key)
          continue
        }
        this.roots.set(key, view('held'))
        for (const device of claimed) if (device !== this.deviceId) pairs.push({ device, root: cid })
        continue
      }
      if (!chosen.includes(this.deviceId)) { this.roots.set(key, view('not-chosen')); continue }
      if (!this.running) break
      if (used + size > quotaBytes) { this.roots.set(key, view('over-quota')); continue }
      this.roots.set(key, view('fetching'))
      try {
        if (await this.c.blobs.has(cid) && await this.care.intact(cid)) await this.c.blobs.pin(cid, { layer, owner })
        else {
          if (await this.c.blobs.has(cid)) await this.care.removeIfUnpinned(cid)
          await this.c.blocks.fetch(cid, { layer, owner })
        }
        used += size
        this.roots.set(key, view('held'))
        this.c.log.info({ root: cid, owner, layer }, 'holding a replica')
        // tell the owner and the co-holders now rather than at the next pass
        const me = this.c.trust.agentId
        if (me != null) await this.refreshOwnPinSet(me)
      } catch (err: any) {
        this.roots.set(key, view(err?.code === 'ERR_QUOTA_EXCEEDED' ? 'over-quota' : 'failed', err?.code ?? err?.message))
      }
    }
    return used
  }
}
