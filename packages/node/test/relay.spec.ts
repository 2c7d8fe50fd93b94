import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { FaultTolerance } from '@libp2p/interface'
import { buildApi, HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { adoptPeer } from './peer-helpers.js'
import { PUNCH_PROTOCOL } from '../src/p2p/hole-punch.js'
import { tempDir, waitFor } from './helpers.js'

/**
 * Circuit relay v2 on loopback: a daemon with HEARTH_RELAY gives reservations
 * to its family and its bootstrap peers only, opens circuits only for peers
 * that are not strangers, and a daemon with HEARTH_RELAY_RESERVE listens
 * through a relay it trusts. Real libp2p nodes on both sides.
 */
describe('relays for the family, not the world', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  const nodes: HearthNode[] = []
  const peers: Libp2p[] = []
  let relay: HearthNode
  let relayAddr = ''

  const mk = async (name: string, env: Record<string, string> = {}): Promise<HearthNode> => {
    const n = new HearthNode(loadConfig({ env: { HEARTH_DATA: join(dir.path, name), P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', ...env } }), { logger: silentLogger })
    await n.start()
    nodes.push(n)
    return n
  }
  const tcpAddr = (n: HearthNode): string => `${n.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!}`
  /** a plain libp2p node, linked to the rack's agent when `family`, that can dial through relays and listen through `relays` */
  const raw = async (opts: { family?: boolean, relays?: string[] } = {}): Promise<Libp2p> => {
    const privateKey = await generateKeyPair('Ed25519')
    if (opts.family === true) await adoptPeer(relay, peerIdFromPrivateKey(privateKey))
    const p = await createLibp2p({
      privateKey,
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0', ...(opts.relays ?? []).map(r => `${r}/p2p-circuit`)] },
      transports: [tcp(), circuitRelayTransport()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() },
      // a refused reservation must not stop the node from starting
      transportManager: { faultTolerance: FaultTolerance.NO_FATAL }
    })
    peers.push(p)
    return p
  }
  const circuitOf = (p: Libp2p): string | undefined => p.getMultiaddrs().map(a => a.toString()).find(a => a.includes('/p2p-circuit'))

  before(async () => {
    dir = await tempDir()
    relay = await mk('rack', { HEARTH_RELAY: 'true' })
    await relay.trust.initAgent()
    relayAddr = tcpAddr(relay)
  })
  after(async () => {
    await Promise.all(peers.map(async p => { await p.stop() }))
    for (const n of nodes.reverse()) await n.stop()
    await dir.remove()
  })

  it('reserves a slot for a family device, refuses a stranger, and relays circuits only for the family', { timeout: 60_000 }, async () => {
    assert.equal(relay.p2pStatus().relay.serving, true)
    const home = await raw({ family: true, relays: [relayAddr] })
    await waitFor(() => circuitOf(home), 15_000, 'the family device to listen through the rack')
    assert.equal(relay.p2pStatus().relay.reservations, 1)

    const stranger = await raw({ relays: [relayAddr] })
    await waitFor(() => (relay.p2pStatus().limits?.reservations_refused ?? 0) >= 1, 15_000, 'the stranger\'s reservation to be refused')
    assert.equal(circuitOf(stranger), undefined, 'a stranger listens through the rack')
    assert.equal(relay.p2pStatus().relay.reservations, 1)

    // a family device reaches home through the circuit: the connection is relayed on both ends
    const laptop = await raw({ family: true })
    const circuit = circuitOf(home)!
    const conn = await laptop.dial(multiaddr(circuit), { signal: AbortSignal.timeout(10_000) })
    assert.ok(conn.remoteAddr.toString().includes('/p2p-circuit'))
    assert.notEqual(conn.limits, undefined, 'a relayed connection carries the relay\'s limits')
    await waitFor(() => home.getConnections(laptop.peerId).some(c => c.remoteAddr.toString().includes('/p2p-circuit')), 5000, 'home to see the relayed connection')

    // a stranger is refused the circuit
    await assert.rejects(stranger.dial(multiaddr(circuit), { signal: AbortSignal.timeout(10_000) }))
    assert.ok((relay.p2pStatus().limits?.circuits_refused ?? 0) >= 1)
  })

  it('a daemon with HEARTH_RELAY_RESERVE listens through its bootstrap relay, and shows relayed peers as such', { timeout: 60_000 }, async () => {
    // the home server: bootstrapped by the rack (so the rack is its bootstrap peer) and a device of the rack's agent
    const first = await mk('server')
    const id = first.peerId
    await first.stop()
    nodes.splice(nodes.indexOf(first), 1)
    await adoptPeer(relay, id)
    const server = await mk('server', { HEARTH_RELAY_RESERVE: 'true', HEARTH_BOOTSTRAP: relayAddr })
    await waitFor(() => server.p2pStatus().relay.reserved_on.includes(relay.peerId.toString()), 20_000, 'the server to reserve on the rack')
    const circuit = server.p2pStatus().addresses.find(a => a.includes('/p2p-circuit'))!
    assert.ok(circuit.startsWith(relayAddr), circuit)

    const laptop = await raw({ family: true })
    await laptop.dial(multiaddr(circuit), { signal: AbortSignal.timeout(10_000) })
    await waitFor(() => server.p2pStatus().peers.find(p => p.peer_id === laptop.peerId.toString())?.path === 'relayed', 5000, 'the laptop shown relayed')
    assert.equal(server.p2pStatus().peers.find(p => p.peer_id === relay.peerId.toString())?.path, 'direct')
    const app = await buildApi({ node: server })
    try {
      const metrics = (await app.inject('/metrics')).body
      assert.match(metrics, /^hearth_p2p_connections_by_path\{path="relayed"\} [1-9]/m)
      assert.match(metrics, /^hearth_relay_reservations\{role="client"\} 1$/m)
    } finally {
      await app.close()
    }
  })

  it('hole punching answers only the family, and an offer no honest peer sends costs a strike', { timeout: 30_000 }, async () => {
    /** opens the punch protocol on the rack and sends `offer`; what comes back, or undefined when the stream was cut */
    const offer = async (p: Libp2p, msg: unknown): Promise<unknown> => {
      const stream = await p.dialProtocol(multiaddr(relayAddr), PUNCH_PROTOCOL, { signal: AbortSignal.timeout(5000) })
      const lp = lpStream(stream, { maxDataLength: 4096 })
      try {
        await lp.write(dagCbor.encode(msg))
        return dagCbor.decode((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray())
      } catch {
        return undefined
      } finally {
        await stream.close().catch(() => {})
      }
    }
    const junk = { type: 'connect', ip: 'not an address', port: 70000 }
    // a stranger's stream is refused before anything it sends is read: no strike, one refusal
    const stranger = await raw()
    const refusedBefore = relay.p2pStatus().limits!.streams_refused
    assert.equal(await offer(stranger, junk), undefined)
    await waitFor(() => relay.p2pStatus().limits!.streams_refused > refusedBefore, 5000, 'the stranger\'s punch stream to be refused')
    assert.equal(relay.penalty.strikesOf(stranger.peerId.toString()), 0)
    // a family device is heard, and struck for an offer with no address in it
    const family = await raw({ family: true })
    assert.equal(await offer(family, junk), undefined)
    await waitFor(() => relay.penalty.strikesOf(family.peerId.toString()) >= 1, 5000, 'the junk offer to cost a strike')
    // a well-formed offer to a node that does not know its own public address is let go without a strike
    const before = relay.penalty.strikesOf(family.peerId.toString())
    assert.equal(await offer(family, { type: 'connect', ip: '127.0.0.1', port: 4000 }), undefined)
    assert.equal(relay.penalty.strikesOf(family.peerId.toString()), before)
  })
})
