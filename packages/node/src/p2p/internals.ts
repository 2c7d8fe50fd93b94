import type { Connection, AbortOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { HearthHost } from './host.js'

/**
 * The few libp2p components Hearth reaches past the public `Libp2p`
 * interface for, typed as narrowly as it uses them. They are read where
 * needed (never cached), and a release that moves them fails loudly in the
 * NAT tests rather than silently here.
 */
export interface Upgrader {
  upgradeOutbound: (maConn: { direction: 'inbound' | 'outbound' }, options: AbortOptions & Record<string, unknown>) => Promise<Connection>
}

interface Internals {
  transportManager: {
    /** starts listening on more addresses after start (a relay's /p2p-circuit) */
    listen: (addrs: Multiaddr[]) => Promise<void>
    dialTransportForMultiaddr: (ma: Multiaddr) => { dial: (ma: Multiaddr, options: AbortOptions & { upgrader: Upgrader } & Record<string, unknown>) => Promise<Connection> } | undefined
  }
  upgrader: Upgrader
  addressManager: {
    getAddressesWithMetadata: () => Array<{ multiaddr: Multiaddr, verified: boolean, type: string }>
  }
}

export function internals (host: HearthHost): Internals {
  const components = (host as unknown as { components?: Internals }).components
  if (components?.transportManager == null || components.addressManager == null || components.upgrader == null) throw new Error('this libp2p release hides its transport and address managers')
  return components
}
