import { CID } from 'multiformats/cid'
import type { BlobStore } from '@hearth/blobstore'
import type { Logger } from '@hearth/trust'
import type { HearthHost } from '../p2p/host.js'
import { routingKey } from './routing-key.js'

/** a root announced this recently is not announced again */
const REANNOUNCE_MS = 30 * 60_000
/** how often pinned roots are looked over */
const ROUND_MS = 10 * 60_000
/** after a peer is identified, a round starts this much later (peers come in bursts) */
const SETTLE_MS = 1000
const PER_ROUND = 512

/**
 * Announces pinned roots (never every block) on the private DHT. A root
 * pinned while no DHT peer was reachable — a laptop adding offline, a node
 * restarting — is announced once peers appear, and every root again before
 * its provider records lapse; libp2p's own reprovider would wait a day.
 */
export class RootAnnouncer {
  /** roots announced successfully since start */
  announced = 0
  private readonly last = new Map<string, number>()
  private timer?: ReturnType<typeof setTimeout>
  private interval?: ReturnType<typeof setInterval>
  private running = false
  private busy = false
  private readonly onIdentify = (): void => { this.soon(SETTLE_MS) }

  constructor (private readonly c: { host: HearthHost, store: BlobStore, log: Logger }) {}

  start (): void {
    this.running = true
    this.c.host.addEventListener('peer:identify', this.onIdentify)
    this.interval = setInterval(() => { this.soon(0) }, ROUND_MS)
    this.interval.unref?.()
  }

  stop (): void {
    this.running = false
    this.c.host.removeEventListener('peer:identify', this.onIdentify)
    clearTimeout(this.timer)
    clearInterval(this.interval)
  }

  /** Announces one root now (after an add or a fetch). */
  async announce (root: CID): Promise<boolean> {
    try {
      await this.c.host.contentRouting.provide(routingKey(root), { signal: AbortSignal.timeout(60_000) })
      this.last.set(root.toString(), Date.now())
      this.announced++
      return true
    } catch (err: any) {
      this.c.log.debug({ root: root.toString(), err: err?.message }, 'could not announce root')
      return false
    }
  }

  private soon (delay: number): void {
    if (!this.running || this.timer != null) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.round()
    }, delay)
    this.timer.unref?.()
  }

  private async round (): Promise<void> {
    if (this.busy || !this.running || this.c.host.getPeers().length === 0) return
    this.busy = true
    try {
      const now = Date.now()
      const roots = [...new Set((await this.c.store.pins()).map(p => p.cid.toString()))]
        .filter(r => now - (this.last.get(r) ?? 0) > REANNOUNCE_MS)
        .slice(0, PER_ROUND)
      for (const r of roots) {
        if (!this.running) break
        // no DHT peer answers: stop here, the next identified peer starts another round
        if (!await this.announce(CID.parse(r))) break
      }
    } catch (err: any) {
      this.c.log.debug({ err: err?.message }, 'announce round failed')
    } finally {
      this.busy = false
    }
  }
}
