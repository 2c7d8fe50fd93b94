import { createHash } from 'node:crypto'

/** Labels that make a failure domain, widest first. */
export const DOMAIN_KEYS = ['region', 'cluster', 'rack'] as const

export function domainOf (labels: Record<string, string>): string {
  return DOMAIN_KEYS.map(k => labels[k] ?? '').join('/')
}

/**
 * Why a node may hold an agent's root: it is one of the agent's own devices,
 * or a device of an agent that granted it storage in that layer. Own devices
 * rank ahead of granting nodes.
 */
export type CandidateRule = 'own-device' | 'grant'

/**
 * Why a candidate is not counted on. `declined`: it announced it holds
 * nothing for its agent in this layer; `unreachable`: no fresh pin set (its
 * heartbeat) from it; `failed-proof`: its last holding proof of this root
 * failed; `over-quota`: it said the root does not fit its quota.
 */
export type Exclusion = 'declined' | 'unreachable' | 'failed-proof' | 'over-quota'

/** A node that may hold a replica, with the labels of its failure domain. */
export interface Candidate {
  device: string
  agent: string
  labels: Record<string, string>
  rule: CandidateRule
  /** the grant that makes it a candidate (rule `grant`) */
  grant?: string
  excluded?: Exclusion
}

/**
 * Where a candidate stands for one root. `chosen`: it should hold a copy.
 * Otherwise `excluded` says why it is not counted on, or, for an eligible
 * node: `domain-taken` (its failure domain already has a copy, and a node in
 * another domain ranked below it was taken instead) or `ranked-out` (enough
 * nodes ranked above it).
 */
export interface Placed extends Candidate {
  /** 1-based position in the rendezvous order (own devices first) */
  rank: number
  domain: string
  chosen: boolean
  reason: 'chosen' | Exclusion | 'domain-taken' | 'ranked-out'
}

export interface Placement {
  /** copies wanted on candidates: the target less the copies other origins already keep */
  need: number
  chosen: string[]
  ranked: Placed[]
}

/**
 * Chooses holders for a root, the same way on every node that knows the same
 * candidates and pin sets. Candidates are ordered by rule (own devices
 * first), then by a hash of (root, device) — rendezvous hashing, so a
 * departure moves only the roots that node held. Eligible ones are taken in
 * that order preferring a failure domain not yet used (the origins' domains
 * count as used: a copy beside the original protects against less); when
 * there are fewer domains than copies, the best-ranked of the rest fill in.
 *
 * `origins` are the devices that pinned the root themselves. The target
 * counts copies on nodes other than the one that pinned it, so every live
 * origin beyond the first is a copy already.
 */
export function place (root: string, candidates: Candidate[], target: number, origins: Array<{ device: string, labels: Record<string, string>, live?: boolean }> = []): Placement {
  const liveOrigins = origins.filter(o => o.live !== false).length
  const need = Math.max(0, target - Math.max(0, liveOrigins - 1))
  const originDevices = new Set(origins.map(o => o.device))
  const ranked = candidates
    .filter(c => !originDevices.has(c.device))
    .map(c => ({ c, score: score(root, c.device), tier: c.rule === 'own-device' ? 0 : 1 }))
    .sort((a, b) => a.tier - b.tier || (a.score < b.score ? -1 : a.score > b.score ? 1 : 0))
    .map(({ c }, i): Placed => ({ ...c, rank: i + 1, domain: domainOf(c.labels), chosen: false, reason: c.excluded ?? 'ranked-out' }))
  const eligible = ranked.filter(p => p.excluded == null)
  const used = new Set(origins.map(o => domainOf(o.labels)))
  let taken = 0
  for (const p of eligible) {
    if (taken >= need) break
    if (used.has(p.domain)) continue
    p.chosen = true
    used.add(p.domain)
    taken++
  }
  for (const p of eligible) {
    if (taken >= need) break
    if (p.chosen) continue
    p.chosen = true
    taken++
  }
  // an eligible node passed over while a lower-ranked one was taken lost to the domain rule
  const lastChosen = eligible.reduce((n, p) => p.chosen ? p.rank : n, 0)
  for (const p of eligible) p.reason = p.chosen ? 'chosen' : p.rank < lastChosen ? 'domain-taken' : 'ranked-out'
  return { need, chosen: eligible.filter(p => p.chosen).map(p => p.device), ranked }
}

function score (root: string, device: string): string {
  return createHash('sha256').update(root).update('\0').update(device).digest('hex')
}
