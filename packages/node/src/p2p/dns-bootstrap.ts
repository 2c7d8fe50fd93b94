import { Resolver } from 'node:dns/promises'
import { isIPv6 } from 'node:net'
import type { Logger } from '@hearth/trust'
import type { BootstrapDialer } from './bootstrap-dialer.js'

export interface DnsBootstrapInit {
  /** e.g. the headless service of a StatefulSet: hearth-p2p.hearth.svc.cluster.local */
  name: string
  port: number
  intervalMs: number
  /** resolvers as `ip` or `ip:port`; the system's when empty */
  servers: string[]
  /** our own IPs, never dialled */
  selfAddresses: () => string[]
}

export interface DnsBootstrapStatus {
  name: string
  addresses: string[]
  last_resolved: string | null
  last_error: string | null
}

/** More records than this are ignored: a peer set is small, a flood is not. */
const MAX_RECORDS = 64

/**
 * Resolves a DNS name's A and AAAA records now and every `intervalMs`, and
 * hands `/ip4|ip6/<addr>/tcp/<port>` for each to the bootstrap dialer, which
 * learns PeerIds through the handshake. Pods of a StatefulSet find each other
 * this way through their headless service.
 */
export class DnsBootstrap {
  private readonly init: DnsBootstrapInit
  private readonly resolver = new Resolver({ timeout: 5000, tries: 2 })
  private readonly dialer: BootstrapDialer
  private readonly log: Logger
  private timer?: ReturnType<typeof setTimeout>
  private running = false
  private current: string[] = []
  private lastResolved: Date | null = null
  private lastError: string | null = null

  constructor (init: DnsBootstrapInit, components: { dialer: BootstrapDialer, log: Logger }) {
    this.init = init
    this.dialer = components.dialer
    this.log = components.log
    if (init.servers.length > 0) this.resolver.setServers(init.servers)
  }

  start (): void {
    this.running = true
    void this.tick()
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    this.resolver.cancel()
  }

  status (): DnsBootstrapStatus {
    return {
      name: this.init.name,
      addresses: this.current,
      last_resolved: this.lastResolved?.toISOString() ?? null,
      last_error: this.lastError
    }
  }

  /** Resolves once and updates the dialer; exposed for tests. */
  async resolve (): Promise<string[]> {
    const settled = await Promise.allSettled([this.resolver.resolve4(this.init.name), this.resolver.resolve6(this.init.name)])
    const ips = settled.flatMap(r => r.status === 'fulfilled' ? r.value : [])
    if (ips.length === 0) {
      const reasons = settled.map(r => r.status === 'rejected' ? (r.reason?.code ?? String(r.reason)) : 'no records')
      throw new Error(`${this.init.name}: ${[...new Set(reasons)].join(', ')}`)
    }
    const self = new Set(this.init.selfAddresses())
    const addrs = [...new Set(ips)].slice(0, MAX_RECORDS)
      .filter(ip => !self.has(ip))
      .map(ip => `/${isIPv6(ip) ? 'ip6' : 'ip4'}/${ip}/tcp/${this.init.port}`)
      .sort()
    if (addrs.join() !== this.current.join()) this.log.info({ name: this.init.name, addrs }, 'DNS bootstrap peers changed')
    this.current = addrs
    this.dialer.setDiscovered(addrs)
    return addrs
  }

  private async tick (): Promise<void> {
    if (!this.running) return
    try {
      await this.resolve()
      this.lastResolved = new Date()
      this.lastError = null
    } catch (err: any) {
      this.lastError = err?.message ?? String(err)
      this.log.warn({ name: this.init.name, err: this.lastError }, 'DNS bootstrap lookup failed')
    }
    if (!this.running) return
    this.timer = setTimeout(() => { void this.tick() }, this.init.intervalMs)
    this.timer.unref?.()
  }
}
