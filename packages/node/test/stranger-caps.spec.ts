import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { hostOf } from '../src/p2p/peer-policy.js'
import { adoptPeer } from './peer-helpers.js'
import { tempDir, waitFor } from './helpers.js'

/**
 * The connection caps for strangers, on a real daemon with real libp2p peers
 * dialling from several loopback addresses (Linux routes all of 127/8 to lo,
 * so a socket may bind any of them as its source): at most
 * HEARTH_P2P_STRANGERS_PER_IP from one address, twice that from one /24,
 * HEARTH_P2P_MAX_STRANGERS in all with the longest-idle making room, idle
 * ones closed and not dialled again, none remembered in node.db, and a
 * linked peer admitted whatever the strangers hold.
 */
const PER_IP = 3
const MAX = 10
/** longer than filling the slots takes, so none goes idle before the caps are checked */
const IDLE_MS = 12_000

async function peerFrom (source: string, listen = false): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: listen ? [`/ip4/${source}/tcp/0`] : [] },
    // net.connect takes localAddress; @libp2p/tcp passes its dial options through
    transports: [tcp({ dialOpts: { localAddress: source } as Record<string, unknown> })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

describe('connection caps for strangers', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let node: HearthNode
  let target: Multiaddr
  const peers: Libp2p[] = []

  before(async () => {
    dir = await tempDir()
    node = new HearthNode(loadConfig({
      env: {
        HEARTH_DATA: join(dir.path, 'target'),
        P2P_PORT: '0',
        HEARTH_P2P_HOST: '127.0.0.1',
        DISABLE_MDNS: 'true',
        HEARTH_P2P_MAX_STRANGERS: String(MAX),
        HEARTH_P2P_STRANGERS_PER_IP: String(PER_IP),
        HEARTH_P2P_STRANGER_IDLE_MS: String(IDLE_MS)
      }
    }), { logger: silentLogger })
    await node.start()
    await node.trust.initAgent()
    target = multiaddr(node.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!)
  })
  after(async () => {
    await Promise.all(peers.map(async p => { await p.stop() }))
    await node.stop()
    await dir.remove()
  })

  /** the daemon's open stranger connections, by source address */
  const strangersBySource = (): Map<string, number> => {
    const out = new Map<string, number>()
    for (const c of node.host!.getConnections()) {
      if (c.status !== 'open' || node.policy.classOf(c.remotePeer) !== 'stranger') continue
      const a = hostOf(c.remoteAddr) ?? '?'
      out.set(a, (out.get(a) ?? 0) + 1)
    }
    return out
  }
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0)
  const connectedTo = (p: Libp2p): boolean => node.host!.getConnections(p.peerId).some(c => c.status === 'open')

  /** `n` fresh identities dial from `source`, one after another, slower than libp2p's per-host threshold */
  const crowd = async (source: string, n: number, listen = false): Promise<Libp2p[]> => {
    const made: Libp2p[] = []
    for (let i = 0; i < n; i++) {
      const p = await peerFrom(source, listen)
      peers.push(p)
      made.push(p)
      await p.dial(target, { signal: AbortSignal.timeout(5000) }).catch(() => {})
      await new Promise(resolve => setTimeout(resolve, 150))
    }
    // a refused dial may look open on the dialler's side until the daemon's close lands
    await new Promise(resolve => setTimeout(resolve, 300))
    return made
  }

  it('holds strangers to their caps per address, per subnet and in all, prunes idle ones, and neither redials nor remembers them', { timeout: 120_000 }, async () => {
    // one address: PER_IP get in
    await crowd('127.0.0.2', PER_IP + 2)
    assert.equal(strangersBySource().get('127.0.0.2'), PER_IP, 'strangers from one address beyond the per-IP cap')
    // a second address of the same /24 fills the subnet's share (twice PER_IP); a third gets nothing
    await crowd('127.0.0.3', PER_IP + 1)
    assert.equal(strangersBySource().get('127.0.0.3'), PER_IP)
    await crowd('127.0.0.4', 2)
    assert.equal(strangersBySource().get('127.0.0.4') ?? 0, 0, 'a full /24 still admitted a stranger')
    assert.ok(node.policy.stats().connections_refused >= 5, `refused ${node.policy.stats().connections_refused}`)

    // a linked peer from an address whose strangers are at the cap is admitted all the same
    const family = await peerFrom('127.0.0.2', true)
    peers.push(family)
    await adoptPeer(node, family.peerId)
    await family.dial(target, { signal: AbortSignal.timeout(5000) })
    await waitFor(() => connectedTo(family), 5000, 'the linked peer to be connected')
    assert.equal(node.policy.classOf(family.peerId), 'linked')

    // other subnets fill the rest of the slots; a newcomer then takes the longest-idle one's place
    await crowd('127.0.1.2', PER_IP)
    await crowd('127.0.2.2', MAX - 3 * PER_IP)
    assert.equal(total(strangersBySource()), MAX)
    const before = node.policy.stats().strangers_pruned
    const [late] = await crowd('127.0.3.2', 1, true)
    await waitFor(() => node.policy.stats().strangers_pruned > before, 5000, 'a stranger to make room')
    assert.ok(connectedTo(late), 'the newcomer was admitted')
    assert.ok(total(strangersBySource()) <= MAX, `${total(strangersBySource())} strangers, cap ${MAX}`)

    const listener = await peerFrom('127.0.4.2', true)
    peers.push(listener)
    // idle strangers go; the linked peer stays
    await waitFor(() => total(strangersBySource()) === 0, IDLE_MS + 10_000, 'idle strangers to be closed')
    assert.ok(connectedTo(family), 'the linked peer was pruned with the strangers')
    assert.ok(node.policy.stats().strangers_pruned >= MAX)

    const discover = (p: Libp2p): void => {
      node.host!.dispatchEvent(new CustomEvent('peer:discovery', { detail: { id: p.peerId, multiaddrs: p.getMultiaddrs() } }))
    }
    await node.host!.peerStore.merge(listener.peerId, { multiaddrs: listener.getMultiaddrs() })
    discover(listener)
    await waitFor(() => connectedTo(listener), 5000, 'a discovered stranger to be dialled')
    // one pruned for idleness is not, though discovery keeps offering it
    assert.equal(node.policy.mayDial(late.peerId.toString()), false)
    discover(late)
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal(connectedTo(late), false, 'a pruned stranger was dialled again')

    // node.db keeps the linked peer for redial at the next start, and no stranger
    const db = new Database(join(dir.path, 'target', 'node.db'), { readonly: true })
    const remembered = new Set((db.prepare('SELECT peer_id FROM known_peers').all() as Array<{ peer_id: string }>).map(r => r.peer_id))
    db.close()
    assert.ok(remembered.has(family.peerId.toString()), 'the linked peer was not remembered')
    const strangerIds: PeerId[] = peers.filter(p => p !== family).map(p => p.peerId)
    assert.deepEqual(strangerIds.filter(id => remembered.has(id.toString())).map(String), [])
  })
})
