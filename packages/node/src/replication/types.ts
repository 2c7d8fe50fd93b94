import type { PinLayer } from '@hearth/blobstore'
import type { CandidateRule, Exclusion } from './placement.js'

/** this node's part in a root */
export type RootState = 'held' | 'fetching' | 'over-quota' | 'failed' | 'not-chosen' | 'declined'

/**
 * A root's protection as this node sees it, counting only copies on nodes
 * other than the one that pinned it, and only copies whose holding proof
 * passed: `ok` (the target is met), `repairing` (fewer than the target, and a
 * copy is being made or proven), `degraded` (some copies, fewer than the
 * target, and no node left that could make another), `unprotected` (no
 * proven copy anywhere else).
 */
export type Health = 'ok' | 'repairing' | 'degraded' | 'unprotected'
export const HEALTHS: readonly Health[] = ['ok', 'repairing', 'degraded', 'unprotected']

/** A node that claims, in its signed pin set, to hold a root. */
export interface HolderView {
  device: string
  domain: string
  /** `origin`: it pinned the root itself; `own-device`: a device of the owner holding a copy; `grant`: a node of an agent that granted storage */
  role: 'origin' | CandidateRule
  /** counts toward the target: it claims the root, this node's last challenge of it passed, and no failure was reported since */
  confirmed: boolean
  /** the last holding proof this node knows of: its own challenge (`by: 'self'`), or a failure another node reported */
  proof: { at: string, result: string, by: string } | null
}

export interface ReplicaView {
  cid: string
  owner: string
  layer: PinLayer
  size: number
  state: RootState
  health: Health
  target: number
  holders: HolderView[]
  error?: string
}

export interface OwnRootView {
  cid: string
  layer: string
  size: number
  target: number
  /** proven copies on other nodes */
  copies: number
  /** a chosen node is fetching the root or has yet to prove its copy */
  repairing: boolean
  holders: HolderView[]
  state: Health
}

export interface ReplicationStatus {
  agent: string | null
  /** this agent's own pinned roots: their target and the holders that confirm them */
  own: OwnRootView[]
  policy: Array<{ agent: string, layer: string, rule: CandidateRule, quota_bytes: number | null, used_bytes: number }>
  roots: ReplicaView[]
  last_run: string | null
}

/** One candidate of a root, as `explain` shows it. */
export interface CandidateView {
  device: string
  agent: string
  name: string | null
  rule: CandidateRule
  grant: string | null
  rank: number
  domain: string
  chosen: boolean
  /** `chosen`, or why not: an exclusion, `domain-taken` or `ranked-out` */
  reason: 'chosen' | Exclusion | 'domain-taken' | 'ranked-out'
  /** it claims a copy in its pin set */
  holds: boolean
  confirmed: boolean
  proof: { at: string, result: string, by: string } | null
}

export { type Exclusion, type CandidateRule } from './placement.js'
