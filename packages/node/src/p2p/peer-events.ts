import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import type { NodeStore } from '../node-store.js'
import type { HearthHost } from './host.js'
import type { PeerPolicy } from './peer-policy.js'

/**
 * What the node does as peers come and go: logs them, measures a new peer's
 * round trip, remembers a non-stranger's addresses for the next start, and
 * dials a discovered peer the policy lets it dial.
 */
export function watchPeers (host: HearthHost, c: { policy: PeerPolicy, store?: NodeStore, latency: Map<string, number>, log: Logger }): void {
  host.addEventListener('peer:identify', evt => {
    const { peerId, listenAddrs } = evt.detail
    // a stranger is not worth a row in node.db, nor a redial at the next start
    if (c.policy.classOf(peerId) === 'stranger') return
    c.store?.rememberPeer(peerId.toString(), listenAddrs.map(a => a.toString()))
  })
  host.addEventListener('peer:connect', evt => {
    const peer = evt.detail
    c.log.info({ peer: peer.toString() }, 'peer connected')
    host.services.ping.ping(peer, { signal: AbortSignal.timeout(5000) })
      .then(ms => { c.latency.set(peer.toString(), ms) })
      .catch(() => {})
  })
  host.addEventListener('connection:close', evt => {
    const conn = evt.detail
    c.log.debug({ peer: conn.remotePeer.toString(), addr: conn.remoteAddr.toString(), direction: conn.direction, lived_ms: Date.now() - conn.timeline.open }, 'connection closed')
  })
  host.addEventListener('peer:disconnect', evt => {
    c.latency.delete(evt.detail.toString())
    c.log.info({ peer: evt.detail.toString() }, 'peer disconnected')
  })
  host.addEventListener('peer:discovery', evt => {
    const peer = evt.detail.id
    if (peer.equals(host.peerId) || host.getConnections(peer).length > 0 || !c.policy.mayDial(peer.toString())) return
    c.log.debug({ peer: peer.toString() }, 'discovered peer')
    host.dial(peer, { signal: AbortSignal.timeout(10_000) }).catch(err => {
      c.log.debug({ peer: peer.toString(), err: err.message }, 'dial to discovered peer failed')
    })
  })
}

/** peers dialled again at start: the most recently seen ones, within a week */
const REDIAL_KNOWN_PEERS = 16
const REDIAL_WINDOW_MS = 7 * 24 * 3600 * 1000

/** Dials again, at start, the peers node.db remembers from the last week (their addresses first go into the peer store) */
export function redialKnownPeers (host: HearthHost, store: NodeStore): void {
  for (const peer of store.recentPeers(REDIAL_KNOWN_PEERS, Date.now() - REDIAL_WINDOW_MS)) {
    let id: PeerId
    try { id = peerIdFromString(peer.peerId) } catch { continue }
    const addrs = peer.addrs.flatMap((a): Multiaddr[] => { try { return [multiaddr(a)] } catch { return [] } })
    if (addrs.length === 0) continue
    host.peerStore.merge(id, { multiaddrs: addrs })
      .then(async () => await host.dial(id, { signal: AbortSignal.timeout(10_000) }))
      .catch(() => {})
  }
}
