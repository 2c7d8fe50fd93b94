import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'

export interface BootstrapDialerInit {
  /** static addresses from HEARTH_BOOTSTRAP */
  addrs: string[]
  /** first retry delay after a failed dial or a lost connection, ms */
  minBackoffMs?: number
  maxBackoffMs?: number
}

export interface BootstrapDialerComponents {
  host: Libp2p
  log: Logger
}

interface Target {
  addr: Multiaddr
  text: string
  /** from the address's /p2p/ part, or learned from the first handshake */
  peerId?: PeerId
  failures: number
  timer?: ReturnType<typeof setTimeout>
  dialing: boolean
  lastError?: string
  source: 'static' | 'dns'
}

export interface BootstrapStatus {
  configured: string[]
  /** addresses found through HEARTH_BOOTSTRAP_DNS */
  discovered: string[]
  connected: Array<{ addr: string, peer_id: string }>
  pending: Array<{ addr: string, failures: number, last_error?: string }>
}

const TAG = 'hearth-bootstrap'

/**
 * Keeps a connection open to every bootstrap address: the static list, and
 * the addresses DNS bootstrap finds (replaced on each resolution). Addresses
 * may carry a /p2p/ PeerId or not; without one the PeerId is learned from the
 * handshake. A failed dial or a dropped connection is retried with
 * exponential backoff, so a home server that reboots is found again.
 */
export class BootstrapDialer {
  private readonly targets = new Map<string, Target>()
  private readonly host: Libp2p
  private readonly log: Logger
  private readonly minBackoff: number
  private readonly maxBackoff: number
  private running = false
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    for (const t of this.targets.values()) {
      if (t.peerId?.equals(evt.detail) === true) {
        this.log.info({ addr: t.text }, 'bootstrap peer disconnected, will redial')
        this.schedule(t, this.minBackoff)
      }
    }
  }

  constructor (init: BootstrapDialerInit, components: BootstrapDialerComponents) {
    this.host = components.host
    this.log = components.log
    this.minBackoff = init.minBackoffMs ?? 1000
    this.maxBackoff = init.maxBackoffMs ?? 60_000
    for (const text of init.addrs) this.add(text, 'static')
  }

  start (): void {
    this.running = true
    this.host.addEventListener('peer:disconnect', this.onDisconnect)
    for (const t of this.targets.values()) this.schedule(t, 0)
  }

  stop (): void {
    this.running = false
    this.host.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const t of this.targets.values()) clearTimeout(t.timer)
  }

  /** Whether `peer` is one of the bootstrap peers (its id known from its address or a dial) */
  isBootstrap (peer: string): boolean {
    for (const t of this.targets.values()) if (t.peerId?.toString() === peer) return true
    return false
  }

  /** Replaces the DNS-discovered targets; new ones are dialled at once, vanished ones dropped. */
  setDiscovered (addrs: string[]): void {
    const wanted = new Set(addrs)
    for (const [text, t] of this.targets) {
      if (t.source === 'dns' && !wanted.has(text)) {
        clearTimeout(t.timer)
        this.targets.delete(text)
      }
    }
    for (const text of wanted) {
      if (this.targets.has(text)) continue
      const t = this.add(text, 'dns')
      if (t != null) this.schedule(t, 0)
    }
  }

  status (): BootstrapStatus {
    const connected: BootstrapStatus['connected'] = []
    const pending: BootstrapStatus['pending'] = []
    const all = [...this.targets.values()]
    for (const t of all) {
      if (this.isConnected(t)) connected.push({ addr: t.text, peer_id: t.peerId!.toString() })
      else pending.push({ addr: t.text, failures: t.failures, ...(t.lastError != null ? { last_error: t.lastError } : {}) })
    }
    return {
      configured: all.filter(t => t.source === 'static').map(t => t.text),
      discovered: all.filter(t => t.source === 'dns').map(t => t.text),
      connected,
      pending
    }
  }

  private add (text: string, source: Target['source']): Target | undefined {
    let addr: Multiaddr
    try { addr = multiaddr(text) } catch { return undefined }
    const t: Target = { addr, text, peerId: peerIdOf(addr), failures: 0, dialing: false, source }
    this.targets.set(text, t)
    return t
  }

  private isConnected (t: Target): boolean {
    return t.peerId != null && this.host.getConnections(t.peerId).some(c => c.status === 'open')
  }

  private schedule (t: Target, delay: number): void {
    if (!this.running || this.targets.get(t.text) !== t) return
    clearTimeout(t.timer)
    t.timer = setTimeout(() => { void this.dial(t) }, delay)
    t.timer.unref?.()
  }

  private async dial (t: Target): Promise<void> {
    if (!this.running || t.dialing || this.isConnected(t)) return
    t.dialing = true
    try {
      const conn = await this.host.dial(t.addr, { signal: AbortSignal.timeout(15_000) })
      t.peerId = conn.remotePeer
      t.failures = 0
      t.lastError = undefined
      await this.host.peerStore.merge(conn.remotePeer, { tags: { [TAG]: { value: 100 } } }).catch(() => {})
      this.log.info({ addr: t.text, peer: conn.remotePeer.toString() }, 'connected to bootstrap peer')
    } catch (err: any) {
      t.failures++
      t.lastError = err?.name === 'AbortError' || err?.name === 'TimeoutError' ? 'dial timed out' : String(err?.message ?? err)
      const delay = Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(t.failures - 1, 16))
      this.log.warn({ addr: t.text, failures: t.failures, retry_ms: delay, err: t.lastError }, 'bootstrap dial failed')
      this.schedule(t, delay)
    } finally {
      t.dialing = false
    }
  }
}

function peerIdOf (addr: Multiaddr): PeerId | undefined {
  const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id == null) return undefined
  try { return peerIdFromString(id) } catch { return undefined }
}
