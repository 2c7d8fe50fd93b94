import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { tempDir, waitFor } from './helpers.js'

const MiB = 1024 * 1024

/**
 * Content routing through the private DHT alone: the reader is never told of
 * the provider, and neither it nor the one peer it knows holds the root.
 */
describe('providers found through the DHT', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const nodes: HearthNode[] = []
  const mk = async (name: string): Promise<HearthNode> => {
    const n = new HearthNode(loadConfig({ env: { HEARTH_DATA: join(dir.path, name), P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true' } }), { logger: silentLogger })
    await n.start()
    nodes.push(n)
    return n
  }
  const tcpAddr = (n: HearthNode): string => n.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!
  before(async () => { dir = await tempDir() })
  after(async () => {
    for (const n of nodes.reverse()) await n.stop()
    await dir.remove()
  })

  it('a reader finds a root\'s provider via an intermediate peer\'s DHT and fetches the root from it', async () => {
    const middle = await mk('middle')
    const provider = await mk('provider')
    // pinned before the provider knows any peer: announced once one appears
    const bytes = randomBytes(2 * MiB + 99)
    const cid = (await provider.blobs.add(bytes, { layer: 'gift' })).cid
    await provider.connect(tcpAddr(middle))
    await waitFor(() => provider.blockExchange!.announced >= 1, 30_000, 'the provider to announce its pinned root')

    const reader = await mk('reader')
    await reader.connect(tcpAddr(middle))
    // the DHT's own lookups may have connected the reader to the provider: hang up, it must find it by provider record
    if (reader.host!.getConnections(provider.peerId).length > 0) await reader.host!.hangUp(provider.peerId)
    assert.deepEqual(await reader.blockExchange!.connectedProviders(cid), [], 'no connected peer holds the root')

    const found = await waitFor(async () => {
      const peers = await reader.blockExchange!.dhtProviders(cid)
      return peers.some(p => p.equals(provider.peerId)) ? peers : undefined
    }, 30_000, 'the DHT to name the provider')
    const result = await reader.blockExchange!.fetch(cid, { providers: found })
    assert.equal(result.cid, cid.toString())
    const back: Buffer[] = []
    for await (const chunk of reader.blobs.cat(cid)) back.push(Buffer.from(chunk))
    assert.ok(Buffer.concat(back).equals(bytes))
    assert.ok(CID.parse(result.cid).equals(cid))
  })

  it('strikes a peer that sends junk on the DHT protocol, and not one that asks properly', async () => {
    const node = await mk('junk-target')
    const junk = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    try {
      const who = junk.peerId.toString()
      /** one length-prefixed frame on a fresh DHT stream; resolves once the daemon answered or cut it */
      const send = async (frame: number[]): Promise<void> => {
        const stream = await junk.dialProtocol(multiaddr(tcpAddr(node)), '/hearth/kad/1.0.0', { signal: AbortSignal.timeout(5000) })
        stream.send(Uint8Array.from([frame.length, ...frame]))
        await new Promise<void>(resolve => {
          const done = (): void => { resolve() }
          stream.addEventListener('message', done, { once: true })
          stream.addEventListener('close', done, { once: true })
          setTimeout(done, 2000)
        })
        await stream.close().catch(() => {})
      }
      // a PING (type 5): the DHT answers it, no strike
      await send([0x08, 0x05])
      assert.equal(node.penalty.strikesOf(who), 0)
      // a message type the DHT does not know
      await send([0x08, 0x63])
      await waitFor(() => node.penalty.strikesOf(who) >= 1, 5000, 'a strike for an unknown message type')
      // bytes that are no protobuf at all (wire type 7)
      await send([0xff, 0xff, 0xff])
      await waitFor(() => node.penalty.strikesOf(who) >= 2, 5000, 'a strike for undecodable bytes')
      // a FIND_NODE without a key
      await send([0x08, 0x04])
      await waitFor(() => node.penalty.strikesOf(who) >= 3, 5000, 'a strike for a request missing its key')
    } finally {
      await junk.stop()
    }
  })
})
