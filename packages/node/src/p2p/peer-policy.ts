import type { Logger } from '@hearth/trust'
import { peerIdFromString } from '@libp2p/peer-id'
import { LRUCache } from 'lru-cache'
import type { Connection, PeerId, Stream, StreamHandlerOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { deviceOfPeer } from '../identity.js'
import { agentVouched, agentsLinked } from '../trust/links.js'
import type { TrustService } from '../trust/service.js'
import { frameGuard } from './frame-guard.js'
import type { FrameGuard } from './frame-guard.js'
import type { HearthHost } from './host.js'
import { InboundBudget } from './inbound-budget.js'
import type { InboundBudgetStats, PeerClass } from './inbound-budget.js'
import type { PenaltyBox } from './penalty-box.js'

export interface PeerPolicyInit {
  /** bytes that all partial inbound frames may take together */
  budgetBytes: number
  /** connections strangers may hold together */
  maxStrangers: number
  /** stranger connections from one IP address */
  strangersPerIp: number
  /** stranger connections from one /24 (IPv4) or /48 (IPv6) */
  strangersPerSubnet: number
  /** a stranger's connection with no Hearth stream open is closed after this long, ms */
  strangerIdleMs: number
}

export interface PeerPolicyStats {
  budget: InboundBudgetStats
  connections: Record<PeerClass, number>
  /** inbound streams refused because the protocol is not for strangers, or strangers' slots were taken */
  streams_refused: number
  /** inbound connections refused: a stranger over a cap, or a banned address */
  connections_refused: number
  /** stranger connections closed to make room or for being idle */
  strangers_pruned: number
  /** frames cut for arriving too slowly */
  frames_timed_out: number
  /** addresses refused to strangers for repeated bans */
  addresses_banned: number
  /** relay reservations this relay refused: not a linked or bootstrap peer */
  reservations_refused: number
  /** circuits this relay refused to open for a stranger */
  circuits_refused: number
}

/** How a protocol treats strangers: refused, or allowed this many inbound streams over all strangers together */
export type StrangerAccess = false | { maxStreams: number }

/** how long a peer's class is remembered, ms (a new statement clears it all) */
const CLASS_TTL_MS = 10_000
const CLASS_CACHE_MAX = 4096
const SWEEP_MS = 15_000
/** bans of strangers from one address within BAN_WINDOW_MS before the address is refused to strangers */
const BANS_PER_ADDRESS = 3
const BAN_WINDOW_MS = 10 * 60_000
/** a pruned stranger is not dialled again for this long, ms (mDNS and the DHT keep offering it) */
const PRUNED_MEMORY_MS = 10 * 60_000

/**
 * What each peer may cost, by who it is. One {@link InboundBudget} bounds the
 * memory of every partial inbound frame; strangers get a small share of it,
 * of the connection slots (per address and per subnet too), and only the
 * protocols that serve them (pairing, gift blocks; libp2p's identify, ping and
 * DHT, which bound themselves). Idle strangers are closed; an address whose
 * strangers keep being banned is refused to new strangers, so fresh
 * identities do not start clean. Linked and bootstrap peers are never pruned
 * or capped here.
 */
export class PeerPolicy {
  readonly budget: InboundBudget
  private readonly init: PeerPolicyInit
  private readonly penalty: PenaltyBox
  private readonly log: Logger
  private host?: HearthHost
  private trust?: TrustService
  private isBootstrap: (peer: string) => boolean = () => false
  private readonly classes = new LRUCache<string, PeerClass>({ max: CLASS_CACHE_MAX, ttl: CLASS_TTL_MS })
  private readonly addressBans = new Map<string, { bans: number[], until: number }>()
  private readonly pruned = new Map<string, number>()
  /** strangers let in from a banned address while an invitation is open: they may only pair */
  private readonly pairingOnly = new LRUCache<string, string>({ max: 256, ttl: 5 * 60_000 })
  private pairingProtocol?: string
  private sweepTimer?: ReturnType<typeof setInterval>
  private offStatements?: () => void
  private counters = { streams_refused: 0, connections_refused: 0, strangers_pruned: 0, frames_timed_out: 0, addresses_banned: 0, reservations_refused: 0, circuits_refused: 0 }

  constructor (init: PeerPolicyInit, deps: { penalty: PenaltyBox, log: Logger }) {
    this.init = init
    this.budget = new InboundBudget({ totalBytes: init.budgetBytes })
    this.penalty = deps.penalty
    this.log = deps.log
  }

  /** Wires the policy to the host and the trust graph once they exist. */
  bind (deps: { host: HearthHost, trust: TrustService, isBootstrap: (peer: string) => boolean, pairingProtocol?: string }): void {
    this.host = deps.host
    this.pairingProtocol = deps.pairingProtocol
    this.trust = deps.trust
    this.isBootstrap = deps.isBootstrap
    this.offStatements = deps.trust.graph.onStatement(() => { this.classes.clear() })
    // often enough that an idle stranger goes within half its allowance of the limit
    this.sweepTimer = setInterval(() => { this.sweep() }, Math.min(SWEEP_MS, Math.max(500, this.init.strangerIdleMs / 2)))
    this.sweepTimer.unref?.()
  }

  stop (): void {
    clearInterval(this.sweepTimer)
    this.offStatements?.()
  }

  classOf (peer: PeerId | string): PeerClass {
    const key = peer.toString()
    const hit = this.classes.get(key)
    if (hit !== undefined) return hit
    const cls = this.classify(key)
    this.classes.set(key, cls)
    return cls
  }

  private classify (peer: string): PeerClass {
    if (this.isBootstrap(peer)) return 'bootstrap'
    const trust = this.trust
    if (trust == null) return 'stranger'
    let id: PeerId
    try { id = peerIdFromString(peer) } catch { return 'stranger' }
    const device = deviceOfPeer(id)
    if (device == null) return 'stranger'
    const agent = trust.graph.agentOfDevice(device)?.agent
    if (agent == null) return 'stranger'
    const self = trust.agentId
    if (self == null) return 'stranger'
    if (agentsLinked(trust.graph, self, agent)) return 'linked'
    return agentVouched(trust.graph, self, agent) ? 'known' : 'stranger'
  }

  banned (peer: PeerId | string): boolean {
    return this.penalty.isBanned(peer.toString())
  }

  /** For the connection gater: whether to refuse a connection now that its peer is known */
  denyInbound (peer: PeerId, remoteAddr: Multiaddr): boolean {
    if (this.penalty.isBanned(peer.toString())) return true
    if (this.classOf(peer) !== 'stranger') return false
    const address = hostOf(remoteAddr)
    const refuse = (why: string): boolean => {
      this.counters.connections_refused++
      this.log.debug({ peer: peer.toString(), address, why }, 'stranger refused')
      return true
    }
    if (address != null && this.addressBanned(address)) {
      // a new device behind the same router as an attacker must still be able
      // to pair while an invitation waits for it: one stranger at a time from
      // that address, and only for pairing
      if (!this.mayPairFrom(address)) return refuse('address banned for strangers')
      this.pairingOnly.set(peer.toString(), address)
      this.log.info({ peer: peer.toString(), address }, 'stranger from a banned address let in to pair: an invitation is open')
      return false
    }
    const strangers = this.strangerConnections()
    if (address != null) {
      if (strangers.filter(c => c.address === address).length >= this.init.strangersPerIp) return refuse('too many strangers from this address')
      const net = subnetOf(address)
      if (strangers.filter(c => c.subnet === net).length >= this.init.strangersPerSubnet) return refuse('too many strangers from this subnet')
    }
    if (strangers.length >= this.init.maxStrangers) {
      // room for the newcomer: the longest-idle stranger goes, else the newcomer waits its turn
      const idle = strangers.filter(c => !busy(c.conn)).sort((a, b) => a.conn.timeline.open - b.conn.timeline.open)[0]
      if (idle == null) return refuse('stranger slots full')
      this.prune(idle.conn, 'room for a newer stranger')
    }
    return false
  }

  /** A peer gets a strike for `reason`; a stranger banned this way also counts against its address */
  offence (peer: string, reason: string, weight = 1): void {
    const banned = this.penalty.strike(peer, reason, weight)
    if (!banned || this.classOf(peer) !== 'stranger' || this.host == null) return
    let id: PeerId
    try { id = peerIdFromString(peer) } catch { return }
    for (const conn of this.host.getConnections(id)) {
      const address = hostOf(conn.remoteAddr)
      if (address != null) this.addressBan(address)
    }
  }

  /**
   * The frame guard for a stream with `peer`, under its current class. With
   * `asked`, a stranger's answers on a stream this node opened to ask it for
   * something it chose (blocks a provider record named, the device an
   * invitation names) are budgeted like a known peer's. A frame refused for
   * lack of room is no offence: the budget is shared, and refusing keeps nothing.
   */
  guard (peer: PeerId | string, opts: { asked?: boolean } = {}): FrameGuard {
    const key = peer.toString()
    const cls = this.classOf(key)
    return frameGuard({
      peer: key,
      cls: cls === 'stranger' && opts.asked === true ? 'known' : cls,
      budget: this.budget,
      offence: (reason, weight) => { this.offence(key, reason, weight) },
      refused: reason => { this.log.debug({ peer: key, reason }, 'inbound frame refused') },
      timedOut: () => { this.counters.frames_timed_out++ }
    })
  }

  /**
   * Registers a Hearth protocol's handler behind the policy: strangers are
   * refused unless `strangers` allows them, and then share that many inbound
   * streams over all their connections.
   */
  async handle (protocol: string, handler: (stream: Stream, conn: Connection) => void, opts: StreamHandlerOptions & { strangers: StrangerAccess }): Promise<void> {
    const host = this.host
    if (host == null) throw new Error('the peer policy is not bound to a host')
    const { strangers, ...streamOpts } = opts
    await host.handle(protocol, (stream, conn) => {
      if (this.classOf(conn.remotePeer) === 'stranger') {
        if (protocol !== this.pairingProtocol && this.pairingOnly.has(conn.remotePeer.toString())) {
          this.counters.streams_refused++
          stream.abort(new Error('this address may only pair'))
          return
        }
        const open = strangers === false ? 0 : this.strangerStreams(protocol)
        if (strangers === false || open > strangers.maxStreams) {
          this.counters.streams_refused++
          stream.abort(new Error(strangers === false ? 'not served to unknown peers' : 'no stream slots for unknown peers'))
          return
        }
      }
      handler(stream, conn)
    }, streamOpts)
  }

  /** Whether `peer` may hold a relay reservation here: a linked or bootstrap peer */
  mayReserve (peer: PeerId | string): boolean {
    const cls = this.classOf(peer)
    const ok = cls === 'linked' || cls === 'bootstrap'
    if (!ok) this.counters.reservations_refused++
    return ok
  }

  /** Whether this node, as a relay, opens a circuit that `source` asked for: not for strangers */
  mayRelayFrom (source: PeerId | string): boolean {
    const ok = this.classOf(source) !== 'stranger'
    if (!ok) this.counters.circuits_refused++
    return ok
  }

  /** Whether a discovered peer is worth dialling (a stranger pruned lately is not) */
  mayDial (peer: string): boolean {
    const at = this.pruned.get(peer)
    return at == null || Date.now() - at > PRUNED_MEMORY_MS
  }

  stats (): PeerPolicyStats {
    const connections: Record<PeerClass, number> = { linked: 0, bootstrap: 0, known: 0, stranger: 0 }
    for (const conn of this.host?.getConnections() ?? []) connections[this.classOf(conn.remotePeer)]++
    return { budget: this.budget.stats(), connections, ...this.counters }
  }

  private strangerConnections (): Array<{ conn: Connection, address?: string, subnet?: string }> {
    const out: Array<{ conn: Connection, address?: string, subnet?: string }> = []
    for (const conn of this.host?.getConnections() ?? []) {
      if (conn.status !== 'open' || this.classOf(conn.remotePeer) !== 'stranger') continue
      const address = hostOf(conn.remoteAddr)
      out.push({ conn, address, subnet: address == null ? undefined : subnetOf(address) })
    }
    return out
  }

  private strangerStreams (protocol: string): number {
    let n = 0
    for (const { conn } of this.strangerConnections()) {
      for (const s of conn.streams) if (s.protocol === protocol && s.direction === 'inbound') n++
    }
    return n
  }

  private prune (conn: Connection, why: string): void {
    this.counters.strangers_pruned++
    this.pruned.set(conn.remotePeer.toString(), Date.now())
    this.log.debug({ peer: conn.remotePeer.toString(), why }, 'stranger connection closed')
    void conn.close({ signal: AbortSignal.timeout(2000) }).catch(() => { conn.abort(new Error('pruned')) })
  }

  private sweep (): void {
    const now = Date.now()
    for (const { conn } of this.strangerConnections()) {
      if (!busy(conn) && now - conn.timeline.open > this.init.strangerIdleMs) this.prune(conn, 'idle')
    }
    for (const [peer, at] of this.pruned) if (now - at > PRUNED_MEMORY_MS) this.pruned.delete(peer)
    for (const [address, entry] of this.addressBans) {
      entry.bans = entry.bans.filter(t => now - t < BAN_WINDOW_MS)
      if (entry.bans.length === 0 && entry.until < now) this.addressBans.delete(address)
    }
  }

  private addressBan (address: string): void {
    const now = Date.now()
    const entry = this.addressBans.get(address) ?? { bans: [], until: 0 }
    entry.bans = entry.bans.filter(t => now - t < BAN_WINDOW_MS)
    entry.bans.push(now)
    if (entry.bans.length >= BANS_PER_ADDRESS && entry.until < now) {
      entry.until = now + BAN_WINDOW_MS
      this.counters.addresses_banned++
      this.log.warn({ address, ban_ms: BAN_WINDOW_MS }, 'address refused to unknown peers after repeated bans')
    }
    this.addressBans.set(address, entry)
  }

  /** Whether a stranger from banned `address` may come in to pair: an invitation is open and no other such stranger from there is connected */
  private mayPairFrom (address: string): boolean {
    if (this.pairingProtocol == null || this.trust?.invitationOpen() !== true) return false
    for (const { conn } of this.strangerConnections()) {
      if (this.pairingOnly.get(conn.remotePeer.toString()) === address) return false
    }
    return true
  }

  private addressBanned (address: string): boolean {
    const entry = this.addressBans.get(address)
    return entry != null && entry.until > Date.now()
  }
}

/** Protocols libp2p runs on every connection, which do not make a stranger busy */
const SYSTEM = ['/ipfs/id/', '/ipfs/ping/', '/hearth/kad/']

function busy (conn: Connection): boolean {
  return conn.streams.some(s => !SYSTEM.some(p => s.protocol?.startsWith(p) === true))
}

/** The IP address of a multiaddr, if it has one */
export function hostOf (addr: Multiaddr): string | undefined {
  for (const c of addr.getComponents()) {
    if ((c.name === 'ip4' || c.name === 'ip6') && c.value != null) return c.value.toLowerCase()
  }
  return undefined
}

/** The /24 of an IPv4 address, or the /48 of an IPv6 one */
export function subnetOf (address: string): string {
  if (!address.includes(':')) return address.split('.').slice(0, 3).join('.') + '.0/24'
  const [head, tail = ''] = address.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
  return groups.slice(0, 3).map(g => g.replace(/^0+(?=.)/, '')).join(':') + '::/48'
}
