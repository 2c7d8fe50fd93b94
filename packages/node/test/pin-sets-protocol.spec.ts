import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { PINS_PROTOCOL } from '../src/replication/manager.js'
import { peekPinSet } from '../src/replication/pin-sets.js'
import { tempDir } from './helpers.js'
import { adoptPeer } from './peer-helpers.js'

describe('pin sets over /hearth/pins/1.0.0', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let node: HearthNode
  let peer: Libp2p
  let agent: string

  before(async () => {
    dir = await tempDir()
    node = new HearthNode(loadConfig({ env: { HEARTH_DATA: join(dir.path, 'n'), P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', HEARTH_REPLICATION_INTERVAL_MS: '300' } }), { logger: silentLogger })
    await node.start()
    agent = (await node.trust.initAgent()).agent_id!
    peer = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    // pin sets are served to linked peers only: the asker is one of the agent's devices
    await adoptPeer(node, peer.peerId)
    await peer.dial(multiaddr(node.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!))
  })
  after(async () => {
    await peer?.stop()
    await node?.stop()
    await dir?.remove()
  })

  const ask = async (msg: unknown): Promise<any> => {
    const stream = await peer.dialProtocol(node.peerId, PINS_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
    await lp.write(dagCbor.encode(msg))
    try {
      return dagCbor.decode((await lp.read()).subarray())
    } catch {
      return undefined // closed on us
    } finally {
      await stream.close().catch(() => {})
    }
  }
  const records = async (known?: unknown): Promise<Array<{ device: string, seq: number }>> => {
    const reply = await ask({ type: 'get', agents: [agent], ...(known !== undefined ? { known } : {}) })
    return reply.records.map((b: Uint8Array) => peekPinSet(b)!)
  }
  const waitFor = async <T>(f: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + 10_000
    for (;;) {
      const v = await f()
      if (v !== undefined) return v
      if (Date.now() > deadline) throw new Error('timed out')
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }

  it('serves the signed set, re-signed each interval with nothing changed (the heartbeat), and leaves out what the asker already holds', async () => {
    const first = await waitFor(async () => (await records())[0])
    // the heartbeat: a newer seq within a few intervals, without anything pinned or changed
    const later = await waitFor(async () => { const r = (await records())[0]; return r.seq > first.seq ? r : undefined })
    assert.equal(later.device, first.device)
    assert.deepEqual(await records([[later.device, Number.MAX_SAFE_INTEGER]]), [], 'nothing newer than what the asker holds')
    assert.equal((await records([[later.device, first.seq]])).length, 1, 'a newer one than the asker holds')
    assert.equal((await records([['zSomeOtherDevice', Number.MAX_SAFE_INTEGER]])).length, 1, 'another device\'s seq does not hide this one')
  })

  it('goes on re-signing while a replication pass is stuck: the heartbeat does not wait for passes', async () => {
    const manager = node.replication as any
    const original = manager.run
    let release!: () => void
    const stuck = new Promise<void>(resolve => { release = resolve })
    let passes = 0
    // the next pass does its work, then never ends (as a pass fetching from a stalled peer)
    manager.run = async function (this: unknown) {
      passes++
      await original.call(this)
      await stuck
    }
    try {
      await waitFor(async () => passes > 0 ? true : undefined)
      const first = (await records())[0]
      const later = await waitFor(async () => { const r = (await records())[0]; return r.seq >= first.seq + 2 ? r : undefined })
      assert.equal(later.device, first.device)
      assert.equal(passes, 1, 'no other pass began while that one was stuck')
    } finally {
      manager.run = original
      release()
    }
  })

  it('refuses a stranger: no pin set reaches a peer with no link to the agent', async () => {
    const stranger = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    try {
      await stranger.dial(multiaddr(node.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!))
      const stream = await stranger.dialProtocol(node.peerId, PINS_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
      await lp.write(dagCbor.encode({ type: 'get', agents: [agent] })).catch(() => {})
      await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }), 'the stream is closed without an answer')
      assert.ok(node.policy.stats().streams_refused >= 1)
      assert.equal(node.penalty.strikesOf(stranger.peerId.toString()), 0, 'asking is no offence')
    } finally {
      await stranger.stop()
    }
  })

  it('closes the stream on a malformed known list, and the sender pays for it', async () => {
    const before = node.penalty.strikesOf(peer.peerId.toString())
    for (const known of ['no', [[1, 2]], [['d', 'seq']], Array.from({ length: 257 }, (_, i) => [`d${i}`, 1])]) {
      assert.equal(await ask({ type: 'get', agents: [agent], known }), undefined, JSON.stringify(known).slice(0, 40))
    }
    assert.ok(node.penalty.strikesOf(peer.peerId.toString()) >= before + 4)
  })
})
