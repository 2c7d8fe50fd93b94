import type { PinLayer } from '@hearth/blobstore'
import type { TrustGraph } from '@hearth/trust'
import type { NodeStore } from '../node-store.js'
import { verifyPinSet } from './pin-sets.js'
import type { PinSet } from './pin-sets.js'
import { domainOf, place } from './placement.js'
import type { Candidate, Placement } from './placement.js'
import { PASSING } from './proof-protocol.js'
import type { ProofRecord } from './proofs.js'
import type { HolderView } from './types.js'

export interface SelfInfo {
  device: string
  labels: Record<string, string>
  /** layers this node holds nothing in for its own agent */
  declines: ReadonlySet<string>
  /** `${cid} ${owner} ${layer}` this node was chosen for and cannot take */
  refused: ReadonlySet<string>
}

type Failure = { at: number, result: string, by: string }

/** Everything one root's replication is decided on, the same way on every node that knows the same pin sets. */
export interface RootPlan {
  cid: string
  owner: string
  layer: PinLayer
  target: number
  /** devices of the owner that pinned the root themselves (newest pin sets, fresh or not) */
  origins: string[]
  /** fresh devices that claim a copy: replica holders and origins */
  claimants: string[]
  /** claimants whose copy this node counts: its own last challenge passed and no failure was reported since */
  proven: Set<string>
  failed: Map<string, Failure>
  placement: Placement
  domains: Map<string, string>
}

/**
 * What a node knows, in one pass, about who holds what: the newest pin sets
 * of the agents it watches (which of them are fresh: a pin set is also its
 * device's heartbeat), and the holding proofs — its own, and the failures
 * other nodes report in their pin sets.
 *
 * A root stays wanted while the newest pin set of a device that pinned it
 * lists it, however old that set is: a laptop that was lost or has been off
 * for a month does not take its backups with it. Only a fresh set counts as
 * a holder that is alive.
 */
export class HolderBook {
  /** failures reported by other nodes, by root, then by holder */
  private readonly reports = new Map<string, Map<string, Failure[]>>()
  private readonly candidateCache = new Map<string, Candidate[]>()
  /** by owner, then `${cid} ${layer}`: the devices that pinned it, and its size */
  private readonly rootsByOwner = new Map<string, Map<string, { origins: string[], size: number }>>()

  constructor (
    /** the newest verified pin set of each watched device */
    readonly latest: Map<string, PinSet>,
    /** devices whose newest pin set is fresh */
    readonly live: Set<string>,
    private readonly self: SelfInfo,
    private readonly graph: TrustGraph,
    private readonly ownProof: (device: string, root: string) => ProofRecord | undefined
  ) {
    for (const set of latest.values()) {
      if (set.device !== self.device) {
        for (const f of set.failed) {
          let byHolder = this.reports.get(f.root)
          if (byHolder == null) this.reports.set(f.root, byHolder = new Map())
          const list = byHolder.get(f.device) ?? []
          list.push({ by: set.device, at: f.at, result: f.result })
          byHolder.set(f.device, list)
        }
      }
      let roots = this.rootsByOwner.get(set.agent)
      if (roots == null) this.rootsByOwner.set(set.agent, roots = new Map())
      for (const r of set.roots) {
        const key = `${r.cid} ${r.layer}`
        const entry = roots.get(key)
        if (entry == null) roots.set(key, { origins: [set.device], size: r.size })
        else entry.origins.push(set.device)
      }
    }
  }

  /** The newest verified pin sets of the agents' devices, and which are fresh (our own always is). */
  static load (store: NodeStore, graph: TrustGraph, agents: string[], selfDevice: string, ttlMs: number): { latest: Map<string, PinSet>, live: Set<string> } {
    const latest = new Map<string, PinSet>()
    const live = new Set<string>()
    const now = Date.now()
    for (const rec of store.pinSetsOf(agents)) {
      try {
        latest.set(rec.device, verifyPinSet(rec.bytes, graph))
      } catch { continue /* its certificate lapsed or was revoked: its word no longer counts */ }
      if (rec.device === selfDevice || now - rec.seq <= ttlMs) live.add(rec.device)
    }
    return { latest, live }
  }

  /** The roots `owner`'s devices pinned in `layer`, with their sizes. */
  wanted (owner: string, layer: PinLayer): Map<string, number> {
    const out = new Map<string, number>()
    for (const [key, r] of this.rootsByOwner.get(owner) ?? []) {
      const [cid, l] = key.split(' ')
      if (l === layer) out.set(cid, r.size)
    }
    return out
  }

  origins (owner: string, cid: string, layer: PinLayer): string[] {
    return this.rootsByOwner.get(owner)?.get(`${cid} ${layer}`)?.origins ?? []
  }

  isLive (device: string): boolean {
    return device === this.self.device || this.live.has(device)
  }

  /**
   * The nodes that may hold `owner`'s pins of `layer`: the owner's own
   * certified devices, then the devices of agents who granted it that layer
   * (their labels matching the grant's). A device that said it declines the
   * layer, or has no fresh pin set, is marked so.
   */
  candidates (owner: string, layer: PinLayer): Candidate[] {
    const key = `${owner} ${layer}`
    const hit = this.candidateCache.get(key)
    if (hit != null) return hit
    const out = new Map<string, Candidate>()
    const labelsOf = (device: string, labels: Record<string, string>): Record<string, string> => device === this.self.device ? this.self.labels : labels
    for (const d of this.graph.devicesOf(owner)) {
      const declined = d.device === this.self.device ? this.self.declines.has(layer) : this.latest.get(d.device)?.declines.includes(layer) === true
      out.set(d.device, { device: d.device, agent: owner, labels: labelsOf(d.device, d.labels), rule: 'own-device', ...(declined ? { excluded: 'declined' as const } : {}) })
    }
    for (const g of this.graph.grantsReceived(owner)) {
      if (g.layer !== layer) continue
      for (const d of this.graph.devicesOf(g.grantor)) {
        if (out.has(d.device) || !Object.entries(g.labels).every(([k, v]) => d.labels[k] === v)) continue
        out.set(d.device, { device: d.device, agent: g.grantor, labels: labelsOf(d.device, d.labels), rule: 'grant', grant: g.id })
      }
    }
    for (const c of out.values()) if (c.excluded == null && !this.isLive(c.device)) c.excluded = 'unreachable'
    const list = [...out.values()]
    this.candidateCache.set(key, list)
    return list
  }

  /** Devices whose word about holders of `owner`'s roots in `layer` counts: the owner's own devices and the candidates. */
  reporters (owner: string, layer: PinLayer): Set<string> {
    return new Set(this.candidates(owner, layer).map(c => c.device))
  }

  /** Fresh devices that claim `cid` for `owner` in `layer`: replica holders, and devices that pinned it themselves. */
  claimants (cid: string, owner: string, layer: PinLayer): string[] {
    const out = new Set<string>()
    for (const set of this.latest.values()) {
      if (!this.isLive(set.device)) continue
      if (set.held.some(h => h.cid === cid && h.owner === owner && h.layer === layer)) out.add(set.device)
    }
    for (const d of this.origins(owner, cid, layer)) if (this.isLive(d)) out.add(d)
    return [...out]
  }

  private refusedBy (device: string, cid: string, owner: string, layer: string): boolean {
    if (device === this.self.device) return this.self.refused.has(`${cid} ${owner} ${layer}`)
    return this.latest.get(device)?.refused.some(r => r.cid === cid && r.owner === owner && r.layer === layer) === true
  }

  /**
   * The plan for one root: who pinned it, who claims it, whose copy is
   * proven, and which candidates should hold it. A candidate whose proof of
   * the root failed, or that refused it for its quota, is left out, so the
   * next in rank takes its place.
   */
  plan (cid: string, owner: string, layer: PinLayer, target: number): RootPlan {
    const reporters = this.reporters(owner, layer)
    const failed = this.failedHolders(cid, reporters)
    const origins = this.origins(owner, cid, layer)
    const candidates = this.candidates(owner, layer).map(c => {
      if (c.excluded != null) return c
      if (failed.has(c.device)) return { ...c, excluded: 'failed-proof' as const }
      if (this.refusedBy(c.device, cid, owner, layer)) return { ...c, excluded: 'over-quota' as const }
      return c
    })
    const labels = new Map(candidates.map(c => [c.device, c.labels]))
    for (const d of this.graph.devicesOf(owner)) if (!labels.has(d.device)) labels.set(d.device, d.device === this.self.device ? this.self.labels : d.labels)
    const liveOrigins = origins.filter(d => this.isLive(d))
    const placement = place(cid, candidates, target, origins.map(d => ({ device: d, labels: labels.get(d) ?? {}, live: liveOrigins.includes(d) })))
    const claimants = this.claimants(cid, owner, layer)
    const proven = new Set(claimants.filter(d => d === this.self.device || (!failed.has(d) && this.passed(d, cid))))
    const domains = new Map([...labels].map(([d, l]) => [d, domainOf(l)]))
    return { cid, owner, layer, target, origins, claimants, proven, failed, placement, domains }
  }

  /** This node's own last challenge of `device` on `cid` passed. */
  private passed (device: string, cid: string): boolean {
    const mine = this.ownProof(device, cid)
    return mine != null && PASSING.has(mine.result)
  }

  /**
   * The holders of `cid` whose latest known proof failed: by this node's own
   * challenge, or by a failure reported by a node whose word counts for this
   * root (`reporters`: the owner's devices and the candidates). A pass of our
   * own newer than every reported failure clears them.
   */
  failedHolders (cid: string, reporters: Set<string>): Map<string, Failure> {
    const out = new Map<string, Failure>()
    const consider = (device: string, v: Failure): void => {
      const prev = out.get(device)
      if (prev == null || v.at > prev.at) out.set(device, v)
    }
    for (const [device, list] of this.reports.get(cid) ?? []) {
      for (const r of list) if (reporters.has(r.by)) consider(device, r)
    }
    for (const device of new Set([...out.keys(), ...this.latest.keys()])) {
      const mine = this.ownProof(device, cid)
      if (mine == null) continue
      if (!PASSING.has(mine.result)) consider(device, { at: mine.at, result: mine.result, by: 'self' })
      else if ((out.get(device)?.at ?? Infinity) < mine.at) out.delete(device)
    }
    return out
  }

  /** How a status row shows one holder. */
  holderView (device: string, plan: RootPlan): HolderView {
    const mine = this.ownProof(device, plan.cid)
    const bad = plan.failed.get(device)
    const proof = bad != null
      ? { at: new Date(bad.at).toISOString(), result: bad.result, by: bad.by }
      : mine != null ? { at: new Date(mine.at).toISOString(), result: mine.result, by: 'self' } : null
    const role = plan.origins.includes(device) ? 'origin' as const : this.graph.agentOfDevice(device)?.agent === plan.owner ? 'own-device' as const : 'grant' as const
    return { device, domain: plan.domains.get(device) ?? '', role, confirmed: plan.proven.has(device), proof }
  }
}
