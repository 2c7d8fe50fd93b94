import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { autoNATv2 } from '@libp2p/autonat-v2'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, Libp2p, PeerDiscovery, PeerId, PrivateKey, Stream, TopologyFilter } from '@libp2p/interface'
import { DHT_PROTOCOL, MDNS_SERVICE_TAG } from '../constants.js'
import type { PeerPolicy } from './peer-policy.js'
import { isRelayed } from '../status.js'

// a type alias, not an interface: libp2p's ServiceMap needs an index signature
export type HostServices = {
  identify: Identify
  ping: Ping
  autoNAT: unknown
  dht: KadDHT
  /** present when this node relays for its family (HEARTH_RELAY) */
  relay?: CircuitRelayService
}

export type HearthHost = Libp2p<HostServices>

export interface HostInit {
  privateKey: PrivateKey
  listenHost: string
  tcpPort: number
  wsPort: number
  mdns: boolean
  /** how often mDNS queries the LAN, ms */
  mdnsInterval?: number
  /** banned peers are neither accepted nor dialled; strangers are held to their caps */
  policy?: PeerPolicy
  /** run a circuit relay v2 server for linked and bootstrap peers, with these limits */
  relay?: RelayLimits
  /** reserve a slot on a relay among linked and bootstrap peers, and listen through it */
  reserve?: boolean
}

export interface RelayLimits {
  /** reservations held at once */
  maxReservations: number
  /** how long one relayed connection may stay open, ms */
  durationMs: number
  /** bytes one relayed connection may carry (both directions) */
  dataBytes: number
}

/** Connection limits: what any peer, or all of them together, can cost us. */
const CONNECTION_LIMITS = {
  maxConnections: 300,
  maxIncomingPendingConnections: 32,
  /** inbound connection attempts per second from one host before it is refused */
  inboundConnectionThreshold: 10,
  maxParallelDials: 50,
  dialTimeout: 10_000,
  inboundUpgradeTimeout: 10_000
}

const STREAM_WINDOW_BYTES = 4 * 1024 * 1024
/**
 * A stream's yamux options: its receive window bounds what a peer can have in
 * flight on it while its reader is paused (4 MiB instead of yamux's 16), and
 * the read buffer takes twice that, so what arrived just before a pause and
 * a full window after it never overflow it (an overflow aborts the stream).
 */
export const STREAM_OPTIONS = { maxStreamWindowSize: STREAM_WINDOW_BYTES, maxReadBufferLength: 2 * STREAM_WINDOW_BYTES }
/** streams a peer may have open on one connection, over all protocols (their own limits add up to about 100) */
const MAX_INBOUND_STREAMS = 128

function listenAddr (host: string, port: number, ws: boolean): string {
  const family = host.includes(':') ? 'ip6' : 'ip4'
  return `/${family}/${host}/tcp/${port}${ws ? '/ws' : ''}`
}

/**
 * Builds (without starting) the libp2p host: TCP and WebSockets, Noise,
 * Yamux, identify, ping, a Kademlia DHT under Hearth's private protocol, and
 * mDNS when enabled. Bootstrap peers are dialled by {@link BootstrapDialer},
 * which also redials them when the connection drops.
 */
export async function createHost (init: HostInit): Promise<HearthHost> {
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if (init.mdns) {
    peerDiscovery.push(mdns({ serviceTag: MDNS_SERVICE_TAG, interval: init.mdnsInterval ?? 10_000 }))
  }
  return await createLibp2p({
    start: false,
    privateKey: init.privateKey,
    addresses: {
      listen: [
        listenAddr(init.listenHost, init.tcpPort, false),
        listenAddr(init.listenHost, init.wsPort, true),
        ...(init.reserve === true ? ['/p2p-circuit'] : [])
      ]
    },
    // every node can dial through a relay; only relays of linked or bootstrap peers are taken for reservations
    transports: [tcp(), webSockets(), circuitRelayTransport({ discoveryFilter: relayCandidates(init.policy), reservationCompletionTimeout: 10_000 })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: MAX_INBOUND_STREAMS, streamOptions: STREAM_OPTIONS })],
    peerDiscovery,
    connectionManager: CONNECTION_LIMITS,
    connectionGater: {
      denyDialPeer: peer => init.policy?.banned(peer) ?? false,
      denyInboundEncryptedConnection: (peer, maConn) => init.policy?.denyInbound(peer, maConn.remoteAddr) ?? false,
      denyOutboundEncryptedConnection: peer => init.policy?.banned(peer) ?? false,
      // as a relay: a slot only for the family and bootstrap peers, circuits only from peers that are not strangers
      denyInboundRelayReservation: peer => !(init.policy?.mayReserve(peer) ?? false),
      denyOutboundRelayedConnection: source => init.policy?.mayRelayFrom(source) === false
    },
    connectionMonitor: { pingInterval: 10_000 },
    nodeInfo: { userAgent: 'hearth/0.1.0' },
    services: {
      identify: identify(),
      ping: ping(),
      // peers dial back the addresses this node believes public; until one does, libp2p does not advertise them
      autoNAT: autoNATv2({ startupDelay: 1000, refreshInterval: 10 * 60_000 }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        // Keep LAN and loopback addresses: home devices and a family's
        // server usually sit behind the same router.
        peerInfoMapper: passthroughMapper
      }),
      ...(init.relay != null
        ? {
            relay: circuitRelayServer({
              reservations: {
                maxReservations: init.relay.maxReservations,
                applyDefaultLimit: true,
                defaultDurationLimit: init.relay.durationMs,
                defaultDataLimit: BigInt(init.relay.dataBytes)
              }
            })
          }
        : {})
    }
  })
}

/**
 * A stream to `peer`: libp2p's dialProtocol, except that a peer reachable
 * only over a relayed connection gets the stream on that connection when
 * `runOnLimitedConnection` allows it. (dialProtocol skips a connection with
 * relay limits and dials again, which opens a second circuit through the
 * relay that the relay may refuse or cut, and fails for a peer whose one way
 * in is the circuit it has.)
 */
export async function openStream (host: HearthHost, peer: PeerId, protocol: string, opts: AbortOptions & { runOnLimitedConnection?: boolean }): Promise<Stream> {
  const open = host.getConnections(peer).filter(c => c.status === 'open')
  // with a direct (or unlimited) connection, libp2p's own choice, as before relays
  if (open.some(c => c.limits == null) || opts.runOnLimitedConnection !== true) return await host.dialProtocol(peer, protocol, opts)
  const relayed = open.find(c => isRelayed(c))
  if (relayed != null) return await relayed.newStream(protocol, opts)
  return await host.dialProtocol(peer, protocol, opts)
}

/** Connected peers whose identify answer lists `protocol`; with `unidentified`, also those whose identify has not answered yet. */
export async function peersSpeaking (host: HearthHost, protocol: string, opts: { unidentified?: boolean } = {}): Promise<PeerId[]> {
  const out: PeerId[] = []
  for (const id of host.getPeers()) {
    const peer = await host.peerStore.get(id).catch(() => undefined)
    const protocols = peer?.protocols ?? []
    // a peer whose identify has not finished yet lists nothing; it may speak it
    if (protocols.includes(protocol) || (opts.unidentified === true && protocols.length === 0)) out.push(id)
  }
  return out
}

/**
 * Which peers speaking the relay protocol are taken as relays: only linked
 * and bootstrap peers (a stranger's relay would carry our circuits). A peer
 * counts as seen once offered, as the registrar's filters expect.
 */
function relayCandidates (policy: PeerPolicy | undefined): TopologyFilter {
  const seen = new Set<string>()
  return {
    has: peer => {
      if (seen.has(peer.toString())) return true
      const cls = policy?.classOf(peer)
      return cls !== 'linked' && cls !== 'bootstrap'
    },
    add: peer => { seen.add(peer.toString()) },
    remove: peer => { seen.delete(peer.toString()) }
  }
}
