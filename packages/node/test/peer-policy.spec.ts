import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createRelationship, createStorageGrant, createTrustGraph, generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import type { TrustGraph } from '@hearth/trust'
import { FRAME_GRACE_MS, frameDeadlineMs, frameGuard } from '../src/p2p/frame-guard.js'
import { framed } from '../src/p2p/framing.js'
import type { FramedStream } from '../src/p2p/framing.js'
import { STREAM_OPTIONS } from '../src/p2p/host.js'
import { InboundBudget } from '../src/p2p/inbound-budget.js'
import { hostOf, subnetOf } from '../src/p2p/peer-policy.js'
import { agentVouched, agentsLinked } from '../src/trust/links.js'
import { tempDir, waitFor } from './helpers.js'

const MiB = 1024 * 1024
const YEAR = 365 * 86_400_000

describe('the inbound budget', () => {
  it('holds every class to its share, and gives back exactly what was taken', () => {
    const b = new InboundBudget({ totalBytes: 64 * MiB })
    // a stranger: 256 KiB each, 4 MiB for all of them
    assert.equal(b.reserve('s1', 'stranger', 256 * 1024), true)
    assert.equal(b.reserve('s1', 'stranger', 1), false, 'one stranger\'s share is 256 KiB')
    for (let i = 2; i <= 16; i++) assert.equal(b.reserve(`s${i}`, 'stranger', 256 * 1024), true)
    assert.equal(b.reserve('s17', 'stranger', 1024), false, 'strangers together get a sixteenth')
    // known peers and strangers together: half
    for (let i = 0; i < 1; i++) assert.equal(b.reserve('k1', 'known', 16 * MiB), true)
    assert.equal(b.reserve('k1', 'known', 1), false, 'one peer\'s share is a quarter')
    assert.equal(b.reserve('k2', 'known', 12 * MiB), true)
    assert.equal(b.reserve('k3', 'known', 1), false, 'the unlinked half is used up')
    // linked peers still find room
    assert.equal(b.reserve('l1', 'linked', 16 * MiB), true)
    assert.equal(b.reserve('l2', 'linked', 16 * MiB), true)
    assert.equal(b.reserve('l3', 'bootstrap', 1), false, 'the whole budget is used')
    assert.equal(b.stats().used_bytes, 64 * MiB)
    b.release('l2', 'linked', 16 * MiB)
    assert.equal(b.reserve('l3', 'bootstrap', 8 * MiB), true)
    for (let i = 1; i <= 16; i++) b.release(`s${i}`, 'stranger', 256 * 1024)
    assert.equal(b.stats().strangers_used_bytes, 0)
    b.release('k1', 'known', 16 * MiB)
    b.release('k2', 'known', 12 * MiB)
    b.release('l1', 'linked', 16 * MiB)
    b.release('l3', 'bootstrap', 8 * MiB)
    assert.deepEqual(b.stats(), { total_bytes: 64 * MiB, used_bytes: 0, strangers_used_bytes: 0, refused: b.refused })
    assert.ok(b.refused >= 5)
    assert.equal(b.usedBy('k1'), 0)
  })
})

describe('addresses', () => {
  it('groups strangers by /24 and /48', () => {
    assert.equal(subnetOf('192.168.1.77'), '192.168.1.0/24')
    assert.equal(subnetOf('2001:db8:1:2::5'), '2001:db8:1::/48')
    assert.equal(subnetOf('2001:0db8:0001:0002:0:0:0:5'), '2001:db8:1::/48')
    assert.equal(subnetOf('::1'), '0:0:0::/48')
    assert.equal(hostOf(multiaddr('/ip4/10.0.0.9/tcp/4001')), '10.0.0.9')
    assert.equal(hostOf(multiaddr('/ip6/FE80::1/tcp/4001')), 'fe80::1')
    assert.equal(hostOf(multiaddr('/dns4/example.com/tcp/4001')), undefined)
  })
})

describe('links and vouching in the trust graph', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let graph: TrustGraph
  before(async () => {
    dir = await tempDir()
    graph = createTrustGraph({ path: `${dir.path}/trust.sqlite` })
  })
  after(async () => { graph.close(); await dir.remove() })

  it('a statement an agent makes about us alone links it to nothing; our own word, or a grant, does', () => {
    const self = generateKeyPair()
    const pushy = generateKeyPair()
    const friend = generateKeyPair()
    const host = generateKeyPair()
    const id = (k: typeof self): string => keyIdFromPublicKey(k.publicKey)
    const expiresAt = Date.now() + YEAR
    graph.add(createRelationship(pushy, { subject: self.publicKey, kind: 'family', expiresAt }).bytes)
    assert.equal(agentsLinked(graph, id(self), id(pushy)), false, 'anyone can claim to be family')
    graph.add(createRelationship(self, { subject: friend.publicKey, kind: 'friend', expiresAt }).bytes)
    assert.equal(agentsLinked(graph, id(self), id(friend)), true)
    graph.add(createStorageGrant(host, { grantee: self.publicKey, layer: 'reciprocal', quotaBytes: 1e9, expiresAt }).bytes)
    assert.equal(agentsLinked(graph, id(self), id(host)), true, 'a grantor holds our replicas, so it may read them')

    // vouching: the friend's word for a stranger makes it known, the pushy agent's does not
    const newcomer = generateKeyPair()
    const sybil = generateKeyPair()
    graph.add(createRelationship(pushy, { subject: sybil.publicKey, kind: 'community', expiresAt }).bytes)
    graph.add(createRelationship(sybil, { subject: self.publicKey, kind: 'community', expiresAt }).bytes)
    assert.equal(agentVouched(graph, id(self), id(sybil)), false)
    graph.add(createRelationship(friend, { subject: newcomer.publicKey, kind: 'community', expiresAt }).bytes)
    assert.equal(agentVouched(graph, id(self), id(newcomer)), true)
    assert.equal(agentsLinked(graph, id(self), id(newcomer)), false)
  })
})

/** Two real libp2p nodes on loopback: every inbound stream of /test/frames is read through `framed` with a guard, frame by frame as the test asks */
describe('the frame guard on real streams', () => {
  let server: Libp2p
  let client: Libp2p
  const budget = new InboundBudget({ totalBytes: 8 * MiB })
  const offences: string[] = []
  const inbound: Stream[] = []
  const readers: FramedStream[] = []
  before(async () => {
    const mk = async (listen: boolean): Promise<Libp2p> => await createLibp2p({ addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux({ streamOptions: STREAM_OPTIONS })] })
    server = await mk(true)
    client = await mk(false)
    await server.handle('/test/frames', stream => {
      const guard = frameGuard({
        peer: 'client',
        cls: 'known',
        budget,
        offence: reason => { offences.push(reason) },
        refused: () => {},
        timedOut: () => {}
      })
      readers.push(framed(stream, { maxBytes: 2 * MiB, timeoutMs: 10_000, guard }))
      inbound.push(stream)
    })
  })
  after(async () => { await client.stop(); await server.stop() })

  const open = async (): Promise<Stream> => await client.dialProtocol(server.getMultiaddrs()[0], '/test/frames')
  const varint = (n: number): number[] => { const out: number[] = []; while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) } out.push(n); return out }
  /** reads one frame on the newest inbound stream (the test's frames are not dag-cbor: the decode error is expected) */
  const readOne = async (): Promise<void> => { await readers.at(-1)!.read().catch(() => {}) }

  it('reserves a frame from its length prefix until the reader has taken it whole', async () => {
    const s = await open()
    s.send(Uint8Array.from([...varint(1 * MiB), 1, 2, 3]))
    await waitFor(() => budget.usedBy('client') === 1 * MiB, 5000, 'the reservation')
    s.send(new Uint8Array(1 * MiB - 3))
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(budget.usedBy('client'), 1 * MiB, 'a whole frame not yet read was released')
    await readOne()
    assert.equal(budget.usedBy('client'), 0, 'a frame read was not released')
    // keep-alives (empty frames) cost nothing
    s.send(Uint8Array.from([0, 0]))
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(budget.usedBy('client'), 0)
    assert.equal(inbound.at(-1)?.status, 'open')
    assert.deepEqual(offences, [])
    await s.close()
  })

  it('pauses a stream while a whole frame waits unread, so the sender waits instead of the reader buffering', async () => {
    const s = await open()
    // twenty frames of 256 KiB, 5 MiB in all: more than one peer's quarter of the budget
    const frame = Uint8Array.from([...varint(256 * 1024), ...new Uint8Array(256 * 1024)])
    let sent = 0
    const sending = (async () => {
      for (let i = 0; i < 20; i++) {
        if (!s.send(frame)) await s.onDrain({ signal: AbortSignal.timeout(10_000) })
        sent++
      }
    })()
    await waitFor(() => budget.usedBy('client') >= 256 * 1024, 5000, 'the first frame')
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(inbound.at(-1)?.readStatus, 'paused', 'the stream was not paused with a frame unread')
    assert.ok(budget.usedBy('client') <= 2 * MiB, `${budget.usedBy('client')} bytes held for unread frames`)
    assert.equal(inbound.at(-1)?.status, 'open', 'the stream was cut instead of paused')
    for (let i = 0; i < 20; i++) await readOne()
    await sending
    assert.equal(sent, 20)
    assert.equal(budget.usedBy('client'), 0)
    assert.deepEqual(offences, [])
    await s.close()
  })

  it('cuts a frame over the cap, or one the budget has no room for, before keeping its bytes', async () => {
    const big = await open()
    big.send(Uint8Array.from(varint(3 * MiB)))
    await waitFor(() => big.status !== 'open' || inbound.at(-1)?.status !== 'open', 5000, 'the oversized frame to be cut')
    assert.match(offences.at(-1) ?? '', /announced a frame of 3145728 bytes/)
    const n = offences.length
    // 2 MiB fits one peer's quarter of 8 MiB; a second 2 MiB frame from the same peer does not
    const a = await open()
    a.send(Uint8Array.from([...varint(2 * MiB), 1]))
    await waitFor(() => budget.usedBy('client') === 2 * MiB, 5000, 'the first reservation')
    const b = await open()
    b.send(Uint8Array.from([...varint(2 * MiB), 1]))
    await waitFor(() => inbound.at(-1)?.status !== 'open', 5000, 'the frame that does not fit to be cut')
    assert.equal(budget.usedBy('client'), 2 * MiB, 'the refused frame took nothing')
    assert.equal(offences.length, n, 'no room is no offence')
    a.abort(new Error('done'))
    await waitFor(() => budget.usedBy('client') === 0, 5000, 'an aborted stream to give its reservation back')
  })

  it('strikes and cuts a frame that arrives slower than its deadline', { timeout: 30_000 }, async () => {
    assert.equal(frameDeadlineMs(100), FRAME_GRACE_MS + 1)
    const s = await open()
    s.send(Uint8Array.from([...varint(100), 1]))
    const t0 = Date.now()
    await waitFor(() => offences.some(o => o.includes('partial frame')), FRAME_GRACE_MS + 5000, 'the drip to be struck')
    assert.ok(Date.now() - t0 >= FRAME_GRACE_MS - 500)
    await waitFor(() => inbound.at(-1)?.status !== 'open', 5000, 'the stream to be cut')
    assert.equal(budget.usedBy('client'), 0)
  })
})
