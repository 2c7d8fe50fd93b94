import type { PinLayer } from '@hearth/blobstore'
import type { TrustGraph } from '@hearth/trust'
import type { NodeStore } from '../node-store.js'
import { verifyPinSet } from './pin-sets.js'
import type { PinSet } from './pin-sets.js'
import { domainOf } from './placement.js'
import type { Candidate } from './placement.js'
import { PASSING } from './proof-protocol.js'
import type { ProofRecord } from './proofs.js'
import type { HolderView } from './types.js'

/**
 * What a node knows, in one pass, about who holds what: the fresh pin sets
 * of the agents it watches, and the holding proofs — its own, and the
 * failures other nodes report in their pin sets.
 */
export class HolderBook {
  /** failures reported by other nodes, by root, then by holder */
  private readonly reports = new Map<string, Map<string, Array<{ by: string, at: number, result: string }>>>()

  constructor (
    readonly live: Map<string, PinSet>,
    private readonly self: { device: string, labels: Record<string, string> },
    private readonly graph: TrustGraph,
    private readonly ownProof: (device: string, root: string) => ProofRecord | undefined
  ) {
    for (const set of live.values()) {
      if (set.device === self.device) continue
      for (const f of set.failed) {
        let byHolder = this.reports.get(f.root)
        if (byHolder == null) this.reports.set(f.root, byHolder = new Map())
        const list = byHolder.get(f.device) ?? []
        list.push({ by: set.device, at: f.at, result: f.result })
        byHolder.set(f.device, list)
      }
    }
  }

  /** Fresh, still-certified pin sets of the given agents' devices (our own always counts as fresh). */
  static load (store: NodeStore, graph: TrustGraph, agents: string[], selfDevice: string, ttlMs: number): Map<string, PinSet> {
    const out = new Map<string, PinSet>()
    const now = Date.now()
    for (const rec of store.pinSetsOf(agents)) {
      if (rec.device !== selfDevice && now - rec.seq > ttlMs) continue
      try { out.set(rec.device, verifyPinSet(rec.bytes, graph)) } catch { /* its certificate lapsed */ }
    }
    return out
  }

  /** The nodes that may hold `owner`'s pins of `layer`: the devices of agents who granted it that layer, their labels matching the grant's. */
  candidates (owner: string, layer: PinLayer): Candidate[] {
    const out = new Map<string, Candidate>()
    for (const g of this.graph.grantsReceived(owner)) {
      if (g.layer !== layer) continue
      for (const d of this.graph.devicesOf(g.grantor)) {
        if (Object.entries(g.labels).every(([k, v]) => d.labels[k] === v)) out.set(d.device, { device: d.device, labels: d.device === this.self.device ? this.self.labels : d.labels })
      }
    }
    return [...out.values()]
  }

  /** Devices whose fresh pin sets say they hold `cid` for `owner` in `layer`. */
  claimants (cid: string, owner: string, layer: PinLayer): string[] {
    return [...this.live.values()].filter(s => s.held.some(h => h.cid === cid && h.owner === owner && h.layer === layer)).map(s => s.device)
  }

  /**
   * The holders of `cid` whose latest known proof failed: by this node's own
   * challenge, or by a failure reported by a node whose word counts for this
   * root (`reporters`: the owner's devices and the candidates). A pass of our
   * own newer than every reported failure clears them.
   */
  failedHolders (cid: string, reporters: Set<string>): Map<string, { at: number, result: string, by: string }> {
    const out = new Map<string, { at: number, result: string, by: string }>()
    const consider = (device: string, v: { at: number, result: string, by: string }): void => {
      const prev = out.get(device)
      if (prev == null || v.at > prev.at) out.set(device, v)
    }
    for (const [device, list] of this.reports.get(cid) ?? []) {
      for (const r of list) if (reporters.has(r.by)) consider(device, r)
    }
    for (const device of new Set([...out.keys(), ...this.live.keys()])) {
      const mine = this.ownProof(device, cid)
      if (mine == null) continue
      if (!PASSING.has(mine.result)) consider(device, { at: mine.at, result: mine.result, by: 'self' })
      else if ((out.get(device)?.at ?? Infinity) < mine.at) out.delete(device)
    }
    return out
  }

  /** How a status row shows one holder. */
  holderView (device: string, cid: string, domains: Map<string, string>, failed: Map<string, { at: number, result: string, by: string }>): HolderView {
    const mine = this.ownProof(device, cid)
    const bad = failed.get(device)
    const proof = bad != null
      ? { at: new Date(bad.at).toISOString(), result: bad.result, by: bad.by }
      : mine != null ? { at: new Date(mine.at).toISOString(), result: mine.result, by: 'self' } : null
    return { device, domain: domains.get(device) ?? '', confirmed: bad == null, proof }
  }

  static domains (candidates: Candidate[]): Map<string, string> {
    return new Map(candidates.map(c => [c.device, domainOf(c.labels)]))
  }
}
