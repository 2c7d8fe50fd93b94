import { estimateDagBytes } from '@hearth/blobstore'
import type { BlobStore, Layer, PinLayer, StorageUsage } from '@hearth/blobstore'
import type { Logger } from '@hearth/trust'
import type { BlockExchange } from '../blocks/exchange.js'
import type { HolderBook, RootPlan } from './holders.js'
import { healthOf } from './health.js'
import type { CandidateRule } from './placement.js'
import type { ProofService } from './proofs.js'
import { ReplicaCare } from './replica-care.js'
import type { ReplicaView, ReplicationStatus, RootState } from './types.js'

/** One line of what this node may hold: an agent's roots in a layer, under a rule, up to a quota (null: the layer's own limit). */
export interface PolicyEntry {
  agent: string
  layer: PinLayer
  rule: CandidateRule
  quotaBytes: number | null
  /** this node said it holds nothing of this kind (its own agent's, in this layer) */
  declined: boolean
  grant?: string
}

/** What this node decided for one root of one owner in one layer, in the last pass. */
export interface Decision {
  entry: PolicyEntry
  plan: RootPlan
  state: RootState
  size: number
  /** bytes of the entry's quota in use after the decision */
  usedBytes: number
  error?: string
}

interface KeeperInit {
  deviceId: string
  targets: Record<PinLayer, number>
  quotas: Partial<Record<Layer, number>>
}

interface KeeperComponents {
  blobs: BlobStore
  blocks: BlockExchange
  proofs: ProofService
  log: Logger
  running: () => boolean
  /** re-signs this node's pin set, so owners and co-holders learn of a new copy before the next pass */
  announce: () => Promise<void>
  /** while true, no replica is fetched (the disk is full) */
  diskFull?: () => boolean
}

/**
 * The holder's side of replication: for every root this node may hold (its
 * own agent's other devices' roots, and those of agents its agent granted
 * storage to), fetch it when chosen and it fits, keep it while it is wanted,
 * mend or drop a damaged copy, and let it go when the owner unpinned it, the
 * grant ended, or enough chosen others proved their copies. A root it is
 * chosen for but cannot fit is refused in its pin set, so the owner is told
 * and the next node in rank takes it.
 */
export class ReplicaKeeper {
  /** by `${cid} ${owner} ${layer}` */
  private readonly rows = new Map<string, Decision>()
  /** `${cid} ${owner} ${layer}` this node was chosen for and cannot take */
  readonly refusedKeys = new Set<string>()
  private readonly care: ReplicaCare

  constructor (private readonly init: KeeperInit, private readonly c: KeeperComponents) {
    this.care = new ReplicaCare(c)
  }

  refusals (): Array<{ cid: string, owner: string, layer: string, reason: string }> {
    return [...this.refusedKeys].sort().map(k => { const [cid, owner, layer] = k.split(' '); return { cid, owner, layer, reason: 'over-quota' } })
  }

  decisionsOf (cid: string): Decision[] {
    return [...this.rows.values()].filter(d => d.plan.cid === cid)
  }

  views (): ReplicaView[] {
    return [...this.rows.values()].map(d => this.viewOf(d))
  }

  /** Health again from the last pass's pin sets, with the proofs that came in since. */
  refreshHealth (book: HolderBook): void {
    for (const d of this.rows.values()) d.plan = book.plan(d.plan.cid, d.plan.owner, d.plan.layer, d.plan.target)
  }

  private viewOf (d: Decision): ReplicaView {
    const { plan } = d
    const me = this.init.deviceId
    const copies = [...plan.proven].filter(x => !plan.origins.includes(x) && (x !== me || d.state === 'held'))
    const holders = [...new Set([...plan.claimants.filter(x => x !== me && !plan.origins.includes(x)), ...(d.state === 'held' ? [me] : [])])]
    const repairing = plan.placement.chosen.some(x => !plan.proven.has(x) || (x === me && d.state !== 'held'))
    return {
      cid: plan.cid,
      owner: plan.owner,
      layer: plan.layer,
      size: d.size,
      state: d.state,
      target: plan.placement.need,
      health: healthOf(copies.length, plan.placement.need, repairing),
      holders: holders.map(device => ({ device, domain: plan.domains.get(device) ?? '', role: d.entry.rule, confirmed: copies.includes(device), proof: this.proofOf(device, plan) })),
      ...(d.error != null ? { error: d.error } : {})
    }
  }

  private proofOf (device: string, plan: RootPlan): { at: string, result: string, by: string } | null {
    const bad = plan.failed.get(device)
    if (bad != null) return { at: new Date(bad.at).toISOString(), result: bad.result, by: bad.by }
    const mine = this.c.proofs.record(device, plan.cid)
    return mine != null ? { at: new Date(mine.at).toISOString(), result: mine.result, by: 'self' } : null
  }

  /** One pass over the policy; returns what each line uses. */
  async pass (agent: string, policy: PolicyEntry[], book: HolderBook, pairs: Array<{ device: string, root: string }>): Promise<ReplicationStatus['policy']> {
    const seen = new Set<string>()
    const usage = await this.c.blobs.usage()
    const views: ReplicationStatus['policy'] = []
    for (const entry of policy) {
      if (!this.c.running()) break
      const used = await this.replicate(entry, book, usage, seen, pairs)
      views.push({ agent: entry.agent, layer: entry.layer, rule: entry.rule, quota_bytes: entry.quotaBytes, used_bytes: used })
    }
    // grants that ended: let their content go
    const allowed = new Set(policy.map(p => `${p.agent} ${p.layer}`))
    for (const pin of await this.c.blobs.pins()) {
      if (pin.owner == null || pin.owner === agent || allowed.has(`${pin.owner} ${pin.layer}`)) continue
      await this.c.blobs.unpin(pin.cid, { layer: pin.layer, owner: pin.owner }).catch(() => {})
    }
    for (const key of this.rows.keys()) if (!seen.has(key)) this.rows.delete(key)
    for (const key of this.refusedKeys) if (!seen.has(key)) this.refusedKeys.delete(key)
    return views
  }

  /** One policy line: every root `owner` pinned in `layer`. Returns the bytes it uses afterwards. */
  private async replicate (entry: PolicyEntry, book: HolderBook, usage: StorageUsage, seen: Set<string>, pairs: Array<{ device: string, root: string }>): Promise<number> {
    const { agent: owner, layer } = entry
    const me = this.init.deviceId
    const target = this.init.targets[layer]
    const wanted = book.wanted(owner, layer)
    const held = new Map((await this.c.blobs.pins({ owner, layer })).map(p => [p.cid.toString(), p]))
    // a grant's quota counts what this node holds under it; its own agent's, the whole layer, as the store does
    let used = entry.rule === 'grant' ? [...held.values()].reduce((n, p) => n + p.dagBytes, 0) : usage.layers[layer].used_bytes
    const layerQuota = this.init.quotas[layer]
    const fits = (size: number): boolean => {
      const bytes = estimateDagBytes(size)
      if (entry.quotaBytes != null && used + bytes > entry.quotaBytes) return false
      return layerQuota == null || usage.layers[layer].used_bytes + bytes <= layerQuota
    }

    for (const cid of new Set([...wanted.keys(), ...held.keys()])) {
      const key = `${cid} ${owner} ${layer}`
      seen.add(key)
      const pin = held.get(cid)
      const size = wanted.get(cid) ?? pin?.size ?? 0
      if (entry.rule === 'own-device' && book.origins(owner, cid, layer).includes(me)) {
        // this device pinned the root itself: a replica pin beside that one is redundant
        if (pin != null) await this.c.blobs.unpin(cid, { layer, owner }).catch(() => {})
        this.rows.delete(key)
        this.refusedKeys.delete(key)
        continue
      }
      // a root refused for its size is looked at again when room was made
      if (pin == null && this.refusedKeys.has(key) && fits(size)) this.refusedKeys.delete(key)
      const plan = book.plan(cid, owner, layer, target)
      const record = (state: RootState, error?: string): void => { this.rows.set(key, { entry, plan, state, size, usedBytes: used, ...(error != null ? { error } : {}) }) }
      const chosen = plan.placement.chosen.includes(me)

      if (pin != null) {
        // a block the scrub or a read found corrupt is fetched again from a peer, in place
        if (await this.care.quarantined(cid) && !await this.care.heal(cid, owner, layer)) { record('failed', 'ERR_REPLICA_DAMAGED'); continue }
        // told (by a failed challenge, ours or reported) that our copy is broken: count its blocks, and drop it if some are gone
        if ((plan.failed.has(me) || this.c.proofs.suspect.has(cid)) && !await this.care.intact(cid)) {
          await this.care.dropDamaged(cid, owner, layer)
          used -= pin.dagBytes
          record('failed', 'ERR_REPLICA_DAMAGED')
          continue
        }
        // let go of what the owner unpinned, or what enough chosen others have proven they hold
        const othersProven = plan.placement.chosen.filter(d => d !== me && plan.proven.has(d)).length
        if (!wanted.has(cid) || (!chosen && othersProven >= plan.placement.need)) {
          await this.c.blobs.unpin(cid, { layer, owner }).catch(() => {})
          used -= pin.dagBytes
          if (entry.rule !== 'grant') usage.layers[layer].used_bytes -= pin.dagBytes
          if (wanted.has(cid)) record('not-chosen')
          else this.rows.delete(key)
          continue
        }
        record('held')
        for (const device of plan.claimants) if (device !== me && !plan.origins.includes(device)) pairs.push({ device, root: cid })
        continue
      }
      if (this.refusedKeys.has(key)) { record('over-quota', 'ERR_QUOTA_EXCEEDED'); continue }
      if (!chosen) { record(entry.declined ? 'declined' : 'not-chosen'); continue }
      if (!this.c.running()) break
      if (!fits(size)) { this.refusedKeys.add(key); record('over-quota', 'ERR_QUOTA_EXCEEDED'); continue }
      if (this.c.diskFull?.() === true) { record('failed', 'ERR_DISK_FULL'); continue }
      record('fetching')
      try {
        if (await this.c.blobs.has(cid) && await this.care.intact(cid)) await this.c.blobs.pin(cid, { layer, owner })
        else {
          if (await this.c.blobs.has(cid)) await this.care.removeIfUnpinned(cid)
          await this.c.blocks.fetch(cid, { layer, owner, ...(size > 0 ? { size } : {}) })
        }
        const dagBytes = (await this.c.blobs.head(cid)).dagBytes
        used += dagBytes
        usage.layers[layer].used_bytes += dagBytes
        record('held')
        this.c.log.info({ root: cid, owner, layer, rule: entry.rule }, 'holding a replica')
        await this.c.announce()
      } catch (err: any) {
        if (err?.code === 'ERR_QUOTA_EXCEEDED') this.refusedKeys.add(key)
        record(err?.code === 'ERR_QUOTA_EXCEEDED' ? 'over-quota' : 'failed', err?.code ?? err?.message)
      }
    }
    return used
  }
}
