import type { PinLayer } from '@hearth/blobstore'

/** this node's part in a root */
export type RootState = 'held' | 'fetching' | 'over-quota' | 'failed' | 'not-chosen'
/** the root's replication as this node sees it */
export type Health = 'ok' | 'degraded' | 'repairing'

/** A node that claims, in its signed pin set, to hold a root. */
export interface HolderView {
  device: string
  domain: string
  /** counts toward the target: it claims the root and no proof of it has failed since it last passed */
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
  holders: HolderView[]
  state: Health
}

export interface ReplicationStatus {
  agent: string | null
  /** this agent's own pinned roots: their target and the holders that confirm them */
  own: OwnRootView[]
  policy: Array<{ agent: string, layer: string, quota_bytes: number, used_bytes: number }>
  roots: ReplicaView[]
  last_run: string | null
}
