import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as A from '@automerge/automerge'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createDeviceCertificate, generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import { actorIdFromDevice, changeSigningMessage, createDeviceSigner, decodeMessage, encodeMessage, parseDocumentId } from '@hearth/sync'
import type { ChangeSignature } from '@hearth/sync'
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { libp2pPrivateKey } from '../src/identity.js'
import { tempDir, waitFor } from './helpers.js'

const startNode = async (data: string): Promise<HearthNode> => {
  const node = new HearthNode(loadConfig({ env: { HEARTH_DATA: data, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true' } }), { logger: silentLogger })
  await node.start()
  return node
}
const tcpAddr = (n: HearthNode): string => n.p2pStatus().addresses.find(a => a.includes('/tcp/') && !a.includes('/ws'))!

describe('documents against a misbehaving peer', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let a: HearthNode
  let b: HearthNode
  let rogue: Libp2p
  const rogueKey = generateKeyPair()
  let rogueAgentId: string

  before(async () => {
    dir = await tempDir()
    a = await startNode(`${dir.path}/a`)
    b = await startNode(`${dir.path}/b`)
    await a.trust.initAgent()
    await b.trust.initAgent()
    a.trust.relate(b.trust.agentId!, 'family', 30)
    b.trust.relate(a.trust.agentId!, 'family', 30)
    rogue = await createLibp2p({ privateKey: libp2pPrivateKey(rogueKey), addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    // the rogue is a certified device of an agent b has no link with but a vouched for (a
    // stranger would not get a sync stream at all): what it may read and write is the ACLs' call
    const rogueAgent = generateKeyPair()
    b.trust.graph.add(createDeviceCertificate(rogueAgent, { device: rogueKey.publicKey, expiresAt: Date.now() + 30 * 86_400_000 }).bytes)
    rogueAgentId = keyIdFromPublicKey(rogueAgent.publicKey)
  })
  after(async () => {
    await rogue?.stop()
    await Promise.all([a?.stop(), b?.stop()])
    await dir.remove()
  })

  it('refuses forged changes and changes by a writer outside the ACL, and relays neither', async () => {
    await a.connect(tcpAddr(b))
    await waitFor(() => b.trust.graph.relationships(b.trust.agentId!).some(r => r.mutual), 10_000, 'the relationship at b')
    a.trust.relate(rogueAgentId, 'friend', 30)
    await waitFor(() => b.trust.graph.relationships(rogueAgentId).some(r => r.incoming != null), 10_000, 'a\'s word for the rogue at b')
    const docs = await a.docs.open()
    const info = docs.store.create({ owner: a.trust.agentId!, writers: [b.trust.agentId!], content: { balance: 100 } })
    const bDocs = await b.docs.open()
    await waitFor(() => bDocs.store.has(info.id) && !bDocs.store.isEmpty(info.id), 15_000, 'the document at b')
    const headsBefore = bDocs.store.heads(info.id)

    // the rogue holds a copy (say, leaked) and writes to it
    const copy = A.load<any>(bDocs.store.save(info.id))
    const rogueDevice = keyIdFromPublicKey(rogueKey.publicKey)
    const signer = createDeviceSigner(rogueKey)
    const docId = parseDocumentId(info.id)
    const changed = A.change(A.clone(copy, { actor: actorIdFromDevice(rogueDevice) }), (d: any) => { d.balance = 0 })
    const change = A.getLastLocalChange(changed)!
    const hash = A.decodeChange(change).hash
    const signed: ChangeSignature = { hash, kind: 'device', device: rogueDevice, signature: signer.sign(changeSigningMessage('device', docId.bytes, Uint8Array.from(Buffer.from(hash, 'hex')))) }
    // and a forgery: the same change claimed by a's device, which did not sign it
    const forged: ChangeSignature = { ...signed, device: a.trust.deviceId }
    const syncWith = (sig: ChangeSignature): Uint8Array => encodeMessage({
      type: 'sync',
      doc: docId.id,
      data: A.encodeSyncMessage({ heads: [hash], need: [], have: [], changes: [change] }),
      signatures: [sig]
    })

    const strikesBefore = b.penalty.strikesOf(rogue.peerId.toString())
    const stream = await rogue.dialProtocol(multiaddr(tcpAddr(b)), '/hearth/sync/1.0.0')
    const lp = lpStream(stream)
    await lp.write(encodeMessage({ type: 'subscribe', docs: [docId.id] }))
    await lp.write(syncWith(signed))
    await lp.write(syncWith(forged))
    const codes: string[] = []
    await waitFor(async () => {
      const m = decodeMessage((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray(), 8 * 1024 * 1024)
      if (m.type === 'doc-error') codes.push(m.code)
      return codes.includes('ERR_UNAUTHORIZED_WRITER') && codes.includes('ERR_INVALID_SIGNATURE')
    }, 10_000, 'doc-errors for both changes')
    assert.ok(codes.includes('ERR_ACCESS_DENIED'), 'and the rogue may not read the document either')
    // an undecodable frame is refused and counted; the session survives it
    await lp.write(Uint8Array.from([1, 99, 0, 0]))

    await waitFor(() => (b.syncStatus().sessions.find(s => s.peer_id === rogue.peerId.toString())?.rejected_messages ?? 0) >= 3, 5000, 'three rejections counted')
    assert.deepEqual(bDocs.store.heads(info.id), headsBefore, 'nothing applied at b')
    assert.equal((bDocs.store.view(info.id).value as any).balance, 100)
    // b relays nothing: a's copy never changes, and its session with b saw no rejected message
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.deepEqual(docs.store.heads(info.id), info.heads)
    assert.equal(a.syncStatus().rejected_messages, 0)
    assert.ok(b.syncStatus().rejected_by_store >= 2)
    // the forgery and the undecodable frame each cost a strike; a writer outside the ACL does not (b's ACL may be newer than the sender's)
    assert.equal(b.penalty.strikesOf(rogue.peerId.toString()) - strikesBefore, 2)
  })

  it('gives a stranger no sync stream', async () => {
    const stranger = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    try {
      const stream = await stranger.dialProtocol(multiaddr(tcpAddr(b)), '/hearth/sync/1.0.0')
      const lp = lpStream(stream)
      await lp.write(encodeMessage({ type: 'subscribe', docs: [] })).catch(() => {})
      await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }))
      assert.equal(b.syncStatus().sessions.some(s => s.peer_id === stranger.peerId.toString()), false)
    } finally {
      await stranger.stop()
    }
  })

  it('closes the stream of a peer that sends a frame over the cap, and strikes it', async () => {
    const stream = await rogue.dialProtocol(multiaddr(tcpAddr(b)), '/hearth/sync/1.0.0')
    const before = b.penalty.strikesOf(rogue.peerId.toString())
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 * 1024 })
    await lp.write(new Uint8Array(9 * 1024 * 1024)).catch(() => {})
    await waitFor(() => b.penalty.strikesOf(rogue.peerId.toString()) > before || b.penalty.isBanned(rogue.peerId.toString()), 10_000, 'a strike')
    await waitFor(() => stream.status !== 'open', 10_000, 'the stream to close')
  })
})
