import { PIN_LAYERS, isDiskFull } from '@hearth/blobstore'
import type { BlobStore, Layer, PinLayer } from '@hearth/blobstore'
import type { KeyPair, Logger } from '@hearth/trust'
import { keyIdFromPublicKey } from '@hearth/trust'
import type { BlockExchange } from '../blocks/exchange.js'
import type { NodeStore } from '../node-store.js'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import type { TrustService } from '../trust/service.js'
import { explainRoot } from './explain.js'
import type { Explanation } from './explain.js'
import { healthOf } from './health.js'
import { HolderBook } from './holders.js'
import type { RootPlan } from './holders.js'
import { MAX_AGENTS_PER_REQUEST, PinSetExchange } from './pin-set-exchange.js'
import { MAX_PIN_SET_FAILURES, MAX_PIN_SET_REFUSALS, signPinSet } from './pin-sets.js'
import { ProofService } from './proofs.js'
import { ReplicaKeeper } from './replica-keeper.js'
import type { PolicyEntry } from './replica-keeper.js'
import type { OwnRootView, ReplicationStatus } from './types.js'

export { PINS_PROTOCOL } from './pin-set-exchange.js'
export type { Health, HolderView, OwnRootView, ReplicaView, ReplicationStatus, RootState } from './types.js'
export type { Explanation } from './explain.js'
export { healthOf } from './health.js'

export interface ReplicationManagerInit {
  intervalMs: number
  proofIntervalMs: number
  labels: Record<string, string>
  deviceKey: KeyPair
  targets: Record<PinLayer, number>
  /** hold copies of the roots this agent's other devices pinned (default true) */
  holdOwn?: boolean
  /** the store's hard quota per layer: what this node can take for its own agent */
  quotas?: Partial<Record<Layer, number>>
}

export interface ReplicationManagerComponents {
  host: HearthHost
  blobs: BlobStore
  trust: TrustService
  store: NodeStore
  blocks: BlockExchange
  policy: PeerPolicy
  log: Logger
  /** while true, no replica is fetched (the disk is full) */
  diskFull?: () => boolean
  /** a write of this manager's found no room */
  onDiskFull?: (where: string) => void
}

/**
 * Replication follows the agent and its grants. Each pass, this node:
 *
 * 1. signs its pin set — the roots it pinned itself, the replicas it holds
 *    (for its own agent and for others), the layers it declines to hold for
 *    its agent, the roots it was chosen for but cannot fit, and the holders
 *    whose last holding proof to it failed — which doubles as a heartbeat;
 * 2. learns the pin sets of its own agent's devices, of the agents it grants
 *    storage to, of their other holders, and of whoever holds its agent's data;
 * 3. for each root its agent's other devices pinned, and each root a granted
 *    agent pinned in a granted layer, chooses the target number of holders
 *    among the nodes that may hold it — the owner's own devices first, then
 *    the nodes of granting agents — by rendezvous hashing spread over failure
 *    domains, leaving out nodes that declined, went quiet, failed a proof or
 *    are full (see HolderBook.plan); fetches the root when chosen (within the
 *    quota), and lets a copy go when the owner unpinned it, the grant ended,
 *    or enough chosen others proved theirs;
 * 4. challenges, in the background, the holders it counts: its own roots'
 *    holders, and the co-holders of the replicas it holds (see ProofService).
 */
export class ReplicationManager {
  readonly proofs: ProofService
  private readonly keeper: ReplicaKeeper
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
  private lastRun: Date | null = null
  private lastPolicy: ReplicationStatus['policy'] = []
  private ownView: OwnRootView[] = []
  private book?: HolderBook
  /** the plans of this agent's own roots in the last pass, by cid */
  private ownPlans = new Map<string, RootPlan[]>()

  constructor (init: ReplicationManagerInit, components: ReplicationManagerComponents) {
    this.init = init
    this.c = components
    this.deviceId = keyIdFromPublicKey(init.deviceKey.publicKey)
    this.pinSets = new PinSetExchange(components)
    this.proofs = new ProofService({ intervalMs: init.proofIntervalMs, forgetMs: Math.max(3 * init.intervalMs, 2000) }, components)
    this.keeper = new ReplicaKeeper({ deviceId: this.deviceId, targets: init.targets, quotas: init.quotas ?? {} }, {
      ...components,
      proofs: this.proofs,
      running: () => this.running,
      announce: async () => { const me = this.c.trust.agentId; if (me != null) await this.refreshOwnPinSet(me) }
    })
  }

  async start (): Promise<void> {
    this.running = true
    await this.adoptOwnAgentPins()
    await this.pinSets.start()
    await this.proofs.start()
    this.proofs.onRound = () => { this.refreshViews() }
    this.schedule(1000)
    // the pin set is the heartbeat: re-signed every interval even while a long pass is busy fetching
    this.heartbeatTimer = setInterval(() => {
      const agent = this.c.trust.agentId
      if (agent != null) void this.refreshOwnPinSet(agent).catch(err => { this.failed(err, 'could not sign the pin set') })
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

  /**
   * Before own devices held copies for each other, a pin naming this node's
   * own agent could only come from a user (`owner=` on an add or a pin);
   * now such a pin means a replica, which replication may let go of. Once,
   * on the first start of this version, those pins become this device's own.
   */
  private async adoptOwnAgentPins (): Promise<void> {
    if (this.c.store.getMeta('own_agent_pins_adopted') != null) return
    const agent = this.c.trust.agentId
    if (agent != null) {
      for (const pin of await this.c.blobs.pins({ owner: agent })) {
        await this.c.blobs.pin(pin.cid, { layer: pin.layer })
        await this.c.blobs.unpin(pin.cid, { layer: pin.layer, owner: agent })
      }
    }
    this.c.store.setMeta('own_agent_pins_adopted', new Date().toISOString())
  }

  /** A background write failed: a full disk is the disk guard's to report (once), anything else is logged */
  private failed (err: any, what: string): void {
    if (isDiskFull(err)) {
      this.c.onDiskFull?.('replication')
      this.c.log.debug({ err: err?.message }, what)
      return
    }
    this.c.log.warn({ err: err?.message }, what)
  }

  private schedule (delay: number): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.busy = this.run().catch(err => { this.failed(err, 'replication pass failed') })
      void this.busy.finally(() => { this.schedule(this.init.intervalMs) })
    }, delay)
    this.timer.unref?.()
  }

  status (): ReplicationStatus {
    return { agent: this.c.trust.agentId ?? null, own: this.ownView, policy: this.lastPolicy, roots: this.keeper.views(), last_run: this.lastRun?.toISOString() ?? null }
  }

  /** Why `cid` is (or is not) held here, and, for this agent's own roots, where and why not elsewhere. */
  explain (cid: string): Explanation {
    return explainRoot(cid, {
      deviceId: this.deviceId,
      agent: this.c.trust.agentId ?? null,
      graph: this.c.trust.graph,
      book: this.book,
      ownPlans: this.ownPlans.get(cid) ?? [],
      held: this.keeper.decisionsOf(cid),
      answered: this.proofs.answeredFor(cid),
      lastRun: this.lastRun
    })
  }

  /** A device whose pin set is older than this is taken for gone. */
  private get ttlMs (): number { return Math.max(4 * this.init.intervalMs, 5000) }

  /** Layers this node holds nothing in for its own agent. */
  private get declines (): string[] {
    if (this.init.holdOwn === false) return [...PIN_LAYERS]
    return PIN_LAYERS.filter(l => this.init.quotas?.[l] === 0)
  }

  /** Signs our pin set when it changed, and at least once per interval as a heartbeat. */
  private async refreshOwnPinSet (agent: string): Promise<void> {
    const next = this.signing.then(async () => { await this.signOwnPinSet(agent) })
    this.signing = next.catch(() => {})
    await next
  }

  private async signOwnPinSet (agent: string): Promise<void> {
    const pins = await this.c.blobs.pins()
    // a pin without an owner is this device's own; one with an owner (this agent included) is a replica
    const roots = pins.filter(p => p.owner == null).map(p => ({ cid: p.cid.toString(), layer: p.layer, size: p.size })).sort((a, b) => (a.cid + a.layer).localeCompare(b.cid + b.layer))
    const held = pins.filter(p => p.owner != null).map(p => ({ cid: p.cid.toString(), owner: p.owner!, layer: p.layer })).sort((a, b) => (a.cid + a.owner + a.layer).localeCompare(b.cid + b.owner + b.layer))
    const failed = this.proofs.failing(MAX_PIN_SET_FAILURES)
    const declines = this.declines
    const refused = this.keeper.refusals().slice(0, MAX_PIN_SET_REFUSALS)
    const digest = JSON.stringify([agent, roots, held, failed.map(f => [f.device, f.root, f.result]), declines, refused])
    if (digest === this.ownDigest && Date.now() - this.lastSigned < this.init.intervalMs) return
    const seq = Math.max(Date.now(), this.lastSigned + 1)
    this.c.store.putPinSet(this.deviceId, agent, seq, signPinSet(this.init.deviceKey, { agent, device: this.deviceId, seq, roots, held, failed, declines, refused }))
    this.ownDigest = digest
    this.lastSigned = seq
  }

  /**
   * Whether a pin that names `owner` in `layer` is one this node keeps: its
   * own agent's, or that of an agent its agent granted storage in that layer.
   * A pass lets any other owner's pin go, so the API refuses them up front.
   */
  holdsFor (owner: string, layer: PinLayer): boolean {
    const agent = this.c.trust.agentId
    if (agent == null) return false
    return owner === agent || this.policy(agent).some(p => p.agent === owner && p.layer === layer)
  }

  /** Whose roots this node may hold: its own agent's, in every layer, and those of the agents its agent granted storage to. */
  private policy (agent: string): PolicyEntry[] {
    const declines = new Set(this.declines)
    const own: PolicyEntry[] = PIN_LAYERS.map(layer => ({ agent, layer, rule: 'own-device', quotaBytes: this.init.quotas?.[layer] ?? null, declined: declines.has(layer) }))
    const granted: PolicyEntry[] = this.c.trust.graph.replicationPolicy({ agentId: agent, labels: this.init.labels })
      .map(p => ({ agent: p.agent, layer: p.layer as PinLayer, rule: 'grant', quotaBytes: p.quotaBytes, declined: false, grant: p.grantId }))
    return [...own, ...granted]
  }

  /** How this device's own pins are held elsewhere; queues a proof of each holder. */
  private viewOwn (agent: string, book: HolderBook, pairs: Array<{ device: string, root: string }>): OwnRootView[] {
    const plans = new Map<string, RootPlan[]>()
    const views = (book.latest.get(this.deviceId)?.roots ?? []).map(r => {
      const layer = r.layer as PinLayer
      const plan = book.plan(r.cid, agent, layer, this.init.targets[layer])
      plans.set(r.cid, [...(plans.get(r.cid) ?? []), plan])
      const holders = plan.claimants.filter(d => d !== this.deviceId)
      for (const device of holders) pairs.push({ device, root: r.cid })
      const copies = holders.filter(d => plan.proven.has(d)).length
      const repairing = plan.placement.chosen.some(d => !plan.proven.has(d))
      return { cid: r.cid, layer, size: r.size, target: plan.target, copies, repairing, holders: holders.map(d => book.holderView(d, plan)), state: healthOf(copies, plan.target, repairing) }
    })
    this.ownPlans = plans
    return views
  }

  /** Views computed again from the last pass's pin sets, with the proofs that came in since. */
  private refreshViews (): void {
    const agent = this.c.trust.agentId
    if (agent == null || this.book == null) return
    this.ownView = this.viewOwn(agent, this.book, [])
    this.keeper.refreshHealth(this.book)
  }

  /** One pass: learn pin sets, fetch or let go of replicas, queue holding proofs. */
  async run (): Promise<void> {
    const agent = this.c.trust.agentId
    if (agent == null) return
    await this.refreshOwnPinSet(agent)
    const graph = this.c.trust.graph
    const policy = this.policy(agent)
    const owners = [...new Set(policy.map(p => p.agent))]
    // our own devices' pin sets, the owners', those of everyone else holding
    // for them (co-holders' heartbeats), and those of whoever holds our data
    const coHolders = owners.flatMap(o => graph.grantsReceived(o).map(g => g.grantor))
    const myHolders = graph.grantsReceived(agent).map(g => g.grantor)
    const watched = [...new Set([agent, ...owners, ...coHolders, ...myHolders])].slice(0, MAX_AGENTS_PER_REQUEST)
    await this.pinSets.learn(watched)
    const { latest, live } = HolderBook.load(this.c.store, graph, watched, this.deviceId, this.ttlMs)
    const book = new HolderBook(latest, live, { device: this.deviceId, labels: this.init.labels, declines: new Set(this.declines), refused: this.keeper.refusedKeys }, graph, (d, r) => this.proofs.record(d, r))
    this.book = book
    const pairs: Array<{ device: string, root: string }> = []
    this.ownView = this.viewOwn(agent, book, pairs)
    this.lastPolicy = await this.keeper.pass(agent, policy, book, pairs)
    this.proofs.suspect.clear()
    this.proofs.check(pairs)
    this.lastRun = new Date()
  }
}
