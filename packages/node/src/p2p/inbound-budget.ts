/**
 * Who a peer is to this node, for what it may cost: `linked` (a device of
 * this node's agent, or of an agent it has a relationship or a storage grant
 * with), `bootstrap` (a configured or DNS-discovered bootstrap peer), `known`
 * (a certified device of an agent that this agent or a linked one vouched
 * for, with a relationship or a grant: a document's ACL may name it) and
 * `stranger` (anyone else, self-certified agents included).
 */
export type PeerClass = 'linked' | 'bootstrap' | 'known' | 'stranger'

export interface InboundBudgetInit {
  /** bytes all peers' partial inbound frames may take together */
  totalBytes: number
  /** what all strangers together may take (default: a sixteenth of the total) */
  strangersBytes?: number
  /** what known peers and strangers together may take, so linked and bootstrap peers always find room (default: half the total) */
  unlinkedBytes?: number
  /** what one stranger may take (default 256 KiB) */
  perStrangerBytes?: number
  /** what one peer of any other class may take (default: a quarter of the total) */
  perPeerBytes?: number
}

export interface InboundBudgetStats {
  total_bytes: number
  used_bytes: number
  strangers_used_bytes: number
  /** frames refused because their sender's share, or the whole budget, had no room */
  refused: number
}

/**
 * One budget for the memory that inbound frames take while they arrive, for
 * the whole daemon. A frame announces its length first; before any of its
 * bytes are kept, the length is reserved here against the budget, the
 * sender's class share and the sender's own share (known peers and strangers
 * together never take more than half, so linked and bootstrap peers always
 * find room), and released when the frame is complete (or its stream ends). A peer that cannot reserve gets its
 * stream aborted instead of its bytes buffered.
 */
export class InboundBudget {
  readonly totalBytes: number
  private readonly strangersBytes: number
  private readonly perStrangerBytes: number
  private readonly perPeerBytes: number
  private readonly unlinkedBytes: number
  private used = 0
  private strangersUsed = 0
  private unlinkedUsed = 0
  private readonly byPeer = new Map<string, number>()
  refused = 0

  constructor (init: InboundBudgetInit) {
    this.totalBytes = init.totalBytes
    this.strangersBytes = init.strangersBytes ?? Math.floor(init.totalBytes / 16)
    this.perStrangerBytes = init.perStrangerBytes ?? Math.min(256 * 1024, this.strangersBytes)
    this.perPeerBytes = init.perPeerBytes ?? Math.floor(init.totalBytes / 4)
    this.unlinkedBytes = init.unlinkedBytes ?? Math.floor(init.totalBytes / 2)
  }

  /**
   * Takes `bytes` for `peer`, or returns false (and takes nothing) when a
   * share has no room. With `force`, takes them whatever the shares say: for
   * bytes already in memory that refusing would not free.
   */
  reserve (peer: string, cls: PeerClass, bytes: number, force = false): boolean {
    const mine = this.byPeer.get(peer) ?? 0
    const stranger = cls === 'stranger'
    const unlinked = stranger || cls === 'known'
    const room = this.used + bytes <= this.totalBytes &&
      mine + bytes <= (stranger ? this.perStrangerBytes : this.perPeerBytes) &&
      (!stranger || this.strangersUsed + bytes <= this.strangersBytes) &&
      (!unlinked || this.unlinkedUsed + bytes <= this.unlinkedBytes)
    if (!room && !force) {
      this.refused++
      return false
    }
    this.used += bytes
    if (stranger) this.strangersUsed += bytes
    if (unlinked) this.unlinkedUsed += bytes
    this.byPeer.set(peer, mine + bytes)
    return true
  }

  /** Gives back what `reserve` took, with the class it was taken under */
  release (peer: string, cls: PeerClass, bytes: number): void {
    if (bytes <= 0) return
    this.used = Math.max(0, this.used - bytes)
    if (cls === 'stranger') this.strangersUsed = Math.max(0, this.strangersUsed - bytes)
    if (cls === 'stranger' || cls === 'known') this.unlinkedUsed = Math.max(0, this.unlinkedUsed - bytes)
    const left = (this.byPeer.get(peer) ?? 0) - bytes
    if (left > 0) this.byPeer.set(peer, left)
    else this.byPeer.delete(peer)
  }

  usedBy (peer: string): number {
    return this.byPeer.get(peer) ?? 0
  }

  stats (): InboundBudgetStats {
    return { total_bytes: this.totalBytes, used_bytes: this.used, strangers_used_bytes: this.strangersUsed, refused: this.refused }
  }
}
