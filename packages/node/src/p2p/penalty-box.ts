import type { Logger } from '@hearth/trust'

export interface PenaltyBoxInit {
  /** strikes before a peer is disconnected and refused */
  maxStrikes?: number
  /** how long a refused peer stays refused, ms */
  banMs?: number
}

/**
 * Counts a peer's protocol offences (forged or malformed statements,
 * oversized frames, floods). At `maxStrikes` the peer is hung up on and
 * refused for `banMs`: the host's connection gater asks `isBanned` before
 * accepting or dialling. Strikes decay: a ban clears them.
 */
export class PenaltyBox {
  private readonly strikes = new Map<string, number>()
  private readonly banned = new Map<string, number>()
  private readonly maxStrikes: number
  private readonly banMs: number
  private hangUp: (peer: string) => Promise<void> = async () => {}
  private log?: Logger
  bans = 0

  constructor (init: PenaltyBoxInit = {}) {
    this.maxStrikes = init.maxStrikes ?? 5
    this.banMs = init.banMs ?? 10 * 60_000
  }

  /** Wires the box to the host once it exists. */
  attach (hangUp: (peer: string) => Promise<void>, log: Logger): void {
    this.hangUp = hangUp
    this.log = log
  }

  isBanned (peer: string): boolean {
    const until = this.banned.get(peer)
    if (until == null) return false
    if (Date.now() < until) return true
    this.banned.delete(peer)
    return false
  }

  /** Records an offence; returns true when it got the peer banned. */
  strike (peer: string, reason: string, weight = 1): boolean {
    const n = (this.strikes.get(peer) ?? 0) + weight
    this.log?.warn({ peer, reason, strikes: n }, 'peer misbehaved')
    if (n < this.maxStrikes) {
      this.strikes.set(peer, n)
      return false
    }
    this.strikes.delete(peer)
    this.banned.set(peer, Date.now() + this.banMs)
    this.bans++
    this.log?.warn({ peer, ban_ms: this.banMs }, 'peer banned')
    void this.hangUp(peer).catch(() => {})
    return true
  }

  strikesOf (peer: string): number {
    return this.strikes.get(peer) ?? 0
  }
}
