import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '@hearth/trust'
import type { HearthHost } from './host.js'
import type { PeerPolicy } from './peer-policy.js'
import type { ReachabilityTracker } from './reachability.js'
import { internals } from './internals.js'
import { relayStatus } from '../status.js'

const CHECK_MS = 15_000
const FIRST_RETRY_MS = 20_000
const MAX_RETRY_MS = 5 * 60_000

/**
 * Keeps a device that should listen through a relay listening through one:
 * with HEARTH_RELAY_RESERVE=always from the start, with `auto` from when it
 * finds itself behind a router (its reachability turns `private`), when it
 * starts listening on `/p2p-circuit` and libp2p looks for a relay among the
 * peers the transport's filter lets through (linked and bootstrap ones). libp2p asks a relay for a reservation once, when
 * the connection to it is identified; a relay of the family refuses a
 * device it does not know yet, and a device usually pairs after it first
 * connected. So while this node holds no reservation, a connected relay
 * that is linked or a bootstrap peer is hung up on and dialled again, which
 * makes libp2p ask afresh — at once when a trust statement arrived (the
 * pairing that links us), else every 15 s, backing off per relay from 20 s
 * to 5 min.
 */
export class RelayKeeper {
  private timer?: ReturnType<typeof setInterval>
  private readonly onIdentify = (): void => {
    if (this.listening) this.host.removeEventListener('peer:identify', this.onIdentify)
    else void this.check()
  }
  private soon?: ReturnType<typeof setTimeout>
  private readonly retryAt = new Map<string, { at: number, wait: number }>()
  private busy = false

  /** whether this node listens on /p2p-circuit (with `always`, from the start) */
  private listening: boolean

  constructor (private readonly host: HearthHost, private readonly policy: PeerPolicy, private readonly log: Logger, private readonly opts: { mode: 'auto' | 'always', reach: ReachabilityTracker }) {
    this.listening = opts.mode === 'always'
  }

  get listeningThroughRelays (): boolean { return this.listening }

  start (onStatement: (listener: () => void) => () => void): void {
    this.timer = setInterval(() => { void this.check() }, CHECK_MS)
    this.timer.unref?.()
    // with `auto`, reachability is looked at again as each peer is identified (what it saw us as is the evidence)
    if (!this.listening) this.host.addEventListener('peer:identify', this.onIdentify)
    this.off = onStatement(() => {
      // the statement that links us is stored a moment before the relay hears of it
      clearTimeout(this.soon)
      this.soon = setTimeout(() => { this.retryAt.clear(); void this.check() }, 2000)
      this.soon.unref?.()
    })
  }

  private off?: () => void

  stop (): void {
    clearInterval(this.timer)
    this.host.removeEventListener('peer:identify', this.onIdentify)
    clearTimeout(this.soon)
    this.off?.()
  }

  private async check (): Promise<void> {
    if (this.busy) return
    if (!this.listening) {
      if (this.opts.reach.status().reachability !== 'private') return
      this.listening = true
      this.log.info('behind a router (reachability private): listening through a relay of the family')
      await internals(this.host).transportManager.listen([multiaddr('/p2p-circuit')]).catch((err: any) => { this.log.warn({ err: err?.message }, 'could not listen through a relay') })
      return
    }
    if (relayStatus(this.host).reserved_on.length > 0) return
    this.busy = true
    try {
      const now = Date.now()
      for (const peer of this.host.getPeers()) {
        const cls = this.policy.classOf(peer)
        if (cls !== 'linked' && cls !== 'bootstrap') continue
        const protocols = (await this.host.peerStore.get(peer).catch(() => undefined))?.protocols ?? []
        if (!protocols.includes(RELAY_V2_HOP_CODEC)) continue
        const key = peer.toString()
        const r = this.retryAt.get(key)
        if (r != null && now < r.at) continue
        const wait = Math.min(MAX_RETRY_MS, r == null ? FIRST_RETRY_MS : r.wait * 2)
        this.retryAt.set(key, { at: now + wait, wait })
        this.log.info({ relay: key }, 'no relay reservation: reconnecting to a relay so that it is asked again')
        await this.host.hangUp(peer).catch(() => {})
        await this.host.dial(peer, { signal: AbortSignal.timeout(10_000) }).catch(err => {
          this.log.debug({ relay: key, err: err?.message }, 'could not redial the relay')
        })
        return
      }
    } finally {
      this.busy = false
    }
  }
}
