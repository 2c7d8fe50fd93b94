import { isIPv4 } from 'node:net'
import { networkInterfaces } from 'node:os'
import { isPrivate } from '@libp2p/utils'
import type { Connection, IdentifyResult } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { HearthHost } from './host.js'
import { isRelayed } from '../status.js'
import { internals } from './internals.js'

export type Reachability = 'public' | 'private' | 'unknown'

export interface ReachabilityStatus {
  /** public: peers can dial this node; private: it is behind a router that lets nothing in unasked; unknown: not found out yet */
  reachability: Reachability
  /** how that was found out */
  reason: string
  /** the public IPv4 addresses peers on public addresses saw this node come from, newest first */
  observed_ips: string[]
  /** this node's own addresses that a peer dialled back and reached (AutoNAT) */
  verified_addresses: string[]
}

/** observed addresses kept */
const MAX_OBSERVED = 8
/** an observation older than this no longer counts (the router's address may have changed) */
const OBSERVED_TTL_MS = 30 * 60_000

function ipOf (ma: Multiaddr): string | undefined {
  const c = ma.getComponents()[0]
  return c?.name === 'ip4' || c?.name === 'ip6' ? c.value : undefined
}

const isPublicAddr = (ma: Multiaddr): boolean => {
  try { return isPrivate(ma) === false } catch { return false }
}

/**
 * Whether this node can be dialled from outside its network, from three
 * kinds of evidence:
 *
 * - AutoNAT (@libp2p/autonat-v2, wired on every node) asks peers to dial back
 *   an address this node believes public; one that answered makes the
 *   address verified, and the node `public`.
 * - A peer on a public address that dialled this node directly reached it
 *   from outside: `public`.
 * - Identify tells each peer the address it sees us come from. libp2p drops
 *   TCP observations (a dial leaves from a fresh port, so the port means
 *   nothing), but the IP does mean something: when a peer on a public address
 *   saw us at a public IP that none of our own addresses carries, a router
 *   translated our address, and while nothing dialled us from outside the
 *   node is `private`. That IP is also what hole punching tells the other
 *   side to aim at.
 *
 * Otherwise (only LAN peers, nothing heard yet) it is `unknown`.
 */
export class ReachabilityTracker {
  private readonly observed = new Map<string, number>()
  private inboundPublicAt?: number
  private readonly punched = new WeakSet<Connection>()

  constructor (private readonly host: HearthHost) {}

  start (): void {
    this.host.addEventListener('peer:identify', this.onIdentify)
  }

  stop (): void {
    this.host.removeEventListener('peer:identify', this.onIdentify)
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const { observedAddr, connection } = evt.detail
    if (observedAddr == null || isRelayed(connection) || !isPublicAddr(connection.remoteAddr)) return
    const ip = ipOf(observedAddr)
    if (ip == null || !isPublicAddr(observedAddr)) return
    this.observed.delete(ip)
    this.observed.set(ip, Date.now())
    while (this.observed.size > MAX_OBSERVED) this.observed.delete(this.observed.keys().next().value!)
  }

  /** A connection hole punching made (see HolePuncher): not evidence that anyone can dial in */
  notePunched (conn: Connection): void {
    this.punched.add(conn)
  }

  /** Public IPs peers saw this node at, newest first, IPv4 before IPv6 */
  observedIps (): string[] {
    const now = Date.now()
    const fresh = [...this.observed].filter(([, at]) => now - at < OBSERVED_TTL_MS).reverse().map(([ip]) => ip)
    return [...fresh.filter(ip => isIPv4(ip)), ...fresh.filter(ip => !isIPv4(ip))]
  }

  status (): ReachabilityStatus {
    // the machine's own addresses (libp2p lists a public one only once it is verified)
    const ownIps = new Set(Object.values(networkInterfaces()).flatMap(list => (list ?? []).map(i => i.address)))
    // a peer on a public address that dialled in (not a punched connection, which is "inbound" on one side without anyone dialling)
    if (this.host.getConnections().some(c => c.direction === 'inbound' && c.status === 'open' && !isRelayed(c) && !this.punched.has(c) && isPublicAddr(c.remoteAddr))) this.inboundPublicAt = Date.now()
    const verified = this.verifiedAddresses()
    const observed = this.observedIps()
    const base = { observed_ips: observed, verified_addresses: verified }
    if (verified.length > 0) return { ...base, reachability: 'public', reason: 'a peer dialled back one of this node\'s addresses (AutoNAT)' }
    if (this.inboundPublicAt != null) return { ...base, reachability: 'public', reason: 'a peer on a public address dialled this node' }
    const translated = observed.filter(ip => !ownIps.has(ip))
    if (translated.length > 0) return { ...base, reachability: 'private', reason: `peers see this node at ${translated[0]}, an address of a router in front of it, and none dialled it from outside` }
    return { ...base, reachability: 'unknown', reason: observed.length > 0 ? 'this node has a public address; no peer has dialled it yet' : 'no peer on a public address has been met yet' }
  }

  private verifiedAddresses (): string[] {
    try {
      // what AutoNAT confirmed; an announced address is the operator's claim, not a verification
      return internals(this.host).addressManager.getAddressesWithMetadata()
        .filter(a => a.verified && a.type !== 'announce' && isPublicAddr(a.multiaddr) && !a.multiaddr.toString().includes('/p2p-circuit'))
        .map(a => a.multiaddr.toString())
    } catch {
      return []
    }
  }
}
