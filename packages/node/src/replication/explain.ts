import type { TrustGraph } from '@hearth/trust'
import type { HolderBook, RootPlan } from './holders.js'
import { healthOf } from './health.js'
import type { Decision } from './replica-keeper.js'
import type { CandidateView, Health, RootState } from './types.js'

/** This node's place in one root it may hold: the rule, the quota, its rank, its proofs. */
export interface HolderExplanation {
  owner: string
  layer: string
  /** `own-device`: a copy of a root another device of this node's own agent pinned; `grant`: under a storage grant this node's agent gave */
  rule: 'own-device' | 'grant'
  grant: { id: string, quota_bytes: number } | null
  /** relationships between the owner and this node's agent (they also let the owner fetch what is pinned here) */
  relationships: string[]
  state: RootState
  error: string | null
  quota: { quota_bytes: number | null, used_bytes: number, left_bytes: number | null }
  rank: number | null
  candidates_total: number
  domain: string
  chosen: boolean
  /** `chosen`, or why not (see CandidateView) */
  reason: string
  /** the last holding proof this node answered on the root, for whom, and how */
  last_proof: { at: string, device: string, answer: string } | null
  why: string
  candidates: CandidateView[]
}

/** Where one of this device's own roots is held, and why each candidate is or is not a holder. */
export interface OwnerExplanation {
  layer: string
  target: number
  /** copies wanted on candidates: the target less the copies other devices that pinned it themselves keep */
  need: number
  copies: number
  state: Health
  origins: string[]
  candidates: CandidateView[]
  why: string
}

export interface Explanation {
  cid: string
  device: string
  agent: string | null
  last_run: string | null
  as_owner: OwnerExplanation[]
  as_holder: HolderExplanation[]
}

export interface ExplainInput {
  deviceId: string
  agent: string | null
  graph: TrustGraph
  book: HolderBook | undefined
  ownPlans: RootPlan[]
  held: Decision[]
  answered: { at: number, device: string, answer: string } | undefined
  lastRun: Date | null
}

const REASONS: Record<string, string> = {
  chosen: 'chosen',
  declined: 'declined: it holds nothing for its agent in this layer',
  unreachable: 'unreachable: no fresh pin set (heartbeat) from it',
  'failed-proof': 'failed a holding proof of this root',
  'over-quota': 'over quota: the root does not fit what it may hold',
  'domain-taken': 'its failure domain already has a copy; a node in another domain was taken',
  'ranked-out': 'enough better-ranked nodes'
}

export function describeReason (reason: string): string {
  return REASONS[reason] ?? reason
}

function candidateViews (plan: RootPlan, graph: TrustGraph, book: HolderBook | undefined): CandidateView[] {
  const names = new Map<string, string>()
  for (const agent of new Set(plan.placement.ranked.map(p => p.agent))) for (const d of graph.devicesOf(agent)) if (d.name != null) names.set(d.device, d.name)
  return plan.placement.ranked.map(p => {
    const proof = book?.holderView(p.device, plan).proof ?? null
    return {
      device: p.device,
      agent: p.agent,
      name: names.get(p.device) ?? null,
      rule: p.rule,
      grant: p.grant ?? null,
      rank: p.rank,
      domain: p.domain,
      chosen: p.chosen,
      reason: p.reason,
      holds: plan.claimants.includes(p.device),
      confirmed: plan.proven.has(p.device),
      proof
    }
  })
}

/** Builds the answer of `GET /replication/explain/:cid` from the last pass's plans. */
export function explainRoot (cid: string, input: ExplainInput): Explanation {
  const { deviceId, graph, book } = input
  const asOwner = input.ownPlans.map((plan): OwnerExplanation => {
    const holders = plan.claimants.filter(d => d !== deviceId)
    const copies = holders.filter(d => plan.proven.has(d)).length
    const repairing = plan.placement.chosen.some(d => !plan.proven.has(d))
    const state = healthOf(copies, plan.target, repairing)
    const chosen = plan.placement.ranked.filter(p => p.chosen).length
    return {
      layer: plan.layer,
      target: plan.target,
      need: plan.placement.need,
      copies,
      state,
      origins: plan.origins,
      candidates: candidateViews(plan, graph, book),
      why: `${state}: ${copies} proven ${copies === 1 ? 'copy' : 'copies'} of ${plan.target} wanted; ${chosen} of ${plan.placement.ranked.length} candidates chosen`
    }
  })
  const asHolder = input.held.map((d): HolderExplanation => {
    const { plan, entry } = d
    const mine = plan.placement.ranked.find(p => p.device === deviceId)
    const relationships = input.agent != null && entry.agent !== input.agent
      ? graph.relationships(input.agent).filter(r => r.agent === entry.agent).map(r => r.kind)
      : []
    const left = entry.quotaBytes == null ? null : Math.max(0, entry.quotaBytes - d.usedBytes)
    const rule = entry.rule === 'own-device' ? `a device of ${entry.agent}, the owner` : `a node of an agent that granted ${entry.agent} ${entry.layer} storage (grant ${entry.grant ?? '?'})`
    const reason = mine?.reason ?? 'not a candidate'
    const standing = mine != null ? `ranked ${mine.rank} of ${plan.placement.ranked.length}, domain ${mine.domain || '-'}, ${describeReason(reason)}` : 'not a candidate'
    return {
      owner: entry.agent,
      layer: entry.layer,
      rule: entry.rule,
      grant: entry.grant != null ? { id: entry.grant, quota_bytes: entry.quotaBytes ?? 0 } : null,
      relationships,
      state: d.state,
      error: d.error ?? null,
      quota: { quota_bytes: entry.quotaBytes, used_bytes: d.usedBytes, left_bytes: left },
      rank: mine?.rank ?? null,
      candidates_total: plan.placement.ranked.length,
      domain: mine?.domain ?? '',
      chosen: mine?.chosen ?? false,
      reason,
      last_proof: input.answered != null ? { at: new Date(input.answered.at).toISOString(), device: input.answered.device, answer: input.answered.answer } : null,
      why: `${d.state}: this node is ${rule}; ${standing}`,
      candidates: candidateViews(plan, graph, book)
    }
  })
  return { cid, device: deviceId, agent: input.agent, last_run: input.lastRun?.toISOString() ?? null, as_owner: asOwner, as_holder: asHolder }
}
