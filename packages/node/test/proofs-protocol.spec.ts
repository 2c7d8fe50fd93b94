import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { lpStream } from '@libp2p/utils'
import Database from 'better-sqlite3'
import { CID } from 'multiformats/cid'
import { multiaddr } from '@multiformats/multiaddr'
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { deviceOfPeer } from '../src/identity.js'
import { ReplicaCare } from '../src/replication/replica-care.js'
import { InvalidChallengeError, PROOFS_PROTOCOL, judgeAnswer, parseChallenge, proofDigest } from '../src/replication/proof-protocol.js'
import { tempDir } from './helpers.js'

const MiB = 1024 * 1024

describe('holding-proof messages', () => {
  it('a challenge from a peer is either valid or refused with InvalidChallengeError, never anything else', () => {
    const arb = fc.oneof(
      fc.anything(),
      fc.record({ type: fc.constant('challenge'), root: fc.string(), cid: fc.string(), mode: fc.constantFrom('digest', 'block', 'other'), nonce: fc.uint8Array({ maxLength: 40 }) })
    )
    fc.assert(fc.property(arb, msg => {
      try {
        const c = parseChallenge(msg)
        assert.equal(c.nonce.length, 32)
      } catch (err) {
        assert.ok(err instanceof InvalidChallengeError, String(err))
      }
    }), { numRuns: 2000 })
  })

  it('an answer is judged without throwing, and only the right digest or block passes', () => {
    const bytes = randomBytes(1000)
    const challenge = { root: 'bafkqaaa', cid: 'bafkqaaa', mode: 'digest' as const, nonce: randomBytes(32) }
    fc.assert(fc.property(fc.anything(), answer => {
      assert.notEqual(judgeAnswer(challenge, answer, bytes).result, 'ok')
      assert.notEqual(judgeAnswer({ ...challenge, mode: 'block' }, answer).result, 'ok')
    }), { numRuns: 2000 })
    const good = proofDigest(challenge.nonce, challenge.root, challenge.cid, bytes)
    assert.equal(judgeAnswer(challenge, { type: 'digest', digest: good }, bytes).result, 'ok')
    // another nonce, another digest: a stored answer does not replay
    assert.equal(judgeAnswer({ ...challenge, nonce: randomBytes(32) }, { type: 'digest', digest: good }, bytes).result, 'wrong')
    assert.equal(judgeAnswer(challenge, { type: 'digest', digest: proofDigest(challenge.nonce, challenge.root, challenge.cid, randomBytes(1000)) }, bytes).result, 'wrong')
  })
})

/** A raw libp2p peer, for playing a misbehaving challenger or holder. */
async function rawPeer (): Promise<Libp2p> {
  return await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
}

async function ask (peer: Libp2p, node: HearthNode, msg: unknown): Promise<any> {
  const stream = await peer.dialProtocol(node.peerId, PROOFS_PROTOCOL)
  const lp = lpStream(stream, { maxDataLength: 4 * MiB })
  await lp.write(dagCbor.encode(msg))
  try {
    return dagCbor.decode((await lp.read()).subarray())
  } catch {
    return undefined // the stream was closed on us
  } finally {
    await stream.close().catch(() => {})
  }
}

describe('holding proofs between nodes', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const nodes: HearthNode[] = []
  const peers: Libp2p[] = []
  let holder: HearthNode
  let cid: string
  const addrOf = (n: HearthNode): string => n.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!
  const mk = async (name: string, env: Record<string, string> = {}): Promise<HearthNode> => {
    const n = new HearthNode(loadConfig({ env: { HEARTH_DATA: join(dir.path, name), P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', ...env } }), { logger: silentLogger })
    await n.start()
    nodes.push(n)
    return n
  }
  before(async () => {
    dir = await tempDir()
    holder = await mk('holder')
    // a gift pin may be read (and so proven) by anyone
    cid = (await holder.blobs.add(randomBytes(3 * MiB + 5), { layer: 'gift' })).cid.toString()
  })
  after(async () => {
    await Promise.all(peers.map(async p => await p.stop()))
    for (const n of nodes) await n.stop()
    await dir.remove()
  })

  it('a challenger holding the blob checks a keyed digest; one holding nothing walks down from the root, block by block', async () => {
    const withCopy = await mk('with-copy')
    const bytes: Buffer[] = []
    for await (const chunk of holder.blobs.cat(cid)) bytes.push(Buffer.from(chunk))
    await withCopy.blobs.add(Buffer.concat(bytes), { layer: 'sovereign' })
    const empty = await mk('empty')
    const holderDevice = deviceOfPeer(holder.peerId)!
    for (const n of [withCopy, empty]) await n.connect(addrOf(holder))
    const before = holder.replication!.proofs.stats.answered.ok
    assert.equal(await withCopy.replication!.proofs.prove(holderDevice, cid), 'ok')
    assert.equal(holder.replication!.proofs.stats.answered.ok - before, 1, 'one digest answer')
    assert.equal(await empty.replication!.proofs.prove(holderDevice, cid), 'ok')
    assert.equal(holder.replication!.proofs.stats.answered.ok - before, 3, 'the root, then one leaf')
    assert.equal(empty.replication!.proofs.record(holderDevice, cid)?.result, 'ok')
    // a root the holder does not have
    const other = (await withCopy.blobs.add(randomBytes(2000), { layer: 'sovereign' })).cid.toString()
    assert.equal(await empty.replication!.proofs.prove(holderDevice, other), 'refused')
    assert.equal(empty.replication!.proofs.failing(10).length, 1)
  })

  it('a holder that answers with a wrong digest, a wrong block or garbage fails, and garbage costs it a strike', async () => {
    const challenger = await mk('challenger')
    await challenger.blobs.add((async function * () { for await (const c of holder.blobs.cat(cid)) yield c })(), { layer: 'sovereign' })
    let answer: (msg: any) => unknown = () => ({})
    const liar = await rawPeer()
    peers.push(liar)
    await liar.handle(PROOFS_PROTOCOL, async stream => {
      const lp = lpStream(stream, { maxDataLength: 4096 })
      const msg = dagCbor.decode<any>((await lp.read()).subarray())
      await lp.write(dagCbor.encode(answer(msg)))
      await stream.close()
    })
    await challenger.connect(liar.getMultiaddrs()[0].toString())
    const liarDevice = deviceOfPeer(liar.peerId)!
    answer = () => ({ type: 'digest', digest: randomBytes(32) })
    assert.equal(await challenger.replication!.proofs.prove(liarDevice, cid), 'wrong')
    answer = () => ({ type: 'missing' })
    assert.equal(await challenger.replication!.proofs.prove(liarDevice, cid), 'missing')
    answer = () => ({ type: 'digest', digest: 'not bytes' })
    assert.equal(await challenger.replication!.proofs.prove(liarDevice, cid), 'malformed')
    assert.ok(challenger.penalty.strikesOf(liar.peerId.toString()) >= 1)
    assert.equal(challenger.replication!.proofs.record(liarDevice, cid)?.result, 'malformed')
    // a challenger without the blob asks for blocks: bytes that do not hash to the CID fail
    const empty = await mk('empty2')
    await empty.connect(liar.getMultiaddrs()[0].toString())
    answer = () => ({ type: 'block', bytes: randomBytes(1000) })
    assert.equal(await empty.replication!.proofs.prove(liarDevice, cid), 'wrong')
  })

  it('closes a malformed challenge with a strike, and throttles a peer that floods challenges', async () => {
    const flooder = await rawPeer()
    peers.push(flooder)
    await flooder.dial(multiaddr(addrOf(holder)))
    const id = flooder.peerId.toString()
    assert.equal(await ask(flooder, holder, { type: 'challenge', root: cid, cid, mode: 'digest', nonce: randomBytes(5) }), undefined, 'a short nonce closes the stream')
    assert.equal(await ask(flooder, holder, { type: 'challenge', root: 'x'.repeat(5000) }), undefined, 'an oversized frame closes the stream')
    assert.ok(holder.penalty.strikesOf(id) >= 2)
    const answers: Record<string, number> = {}
    for (let i = 0; i < 60; i++) {
      const a = await ask(flooder, holder, { type: 'challenge', root: cid, cid, mode: 'digest', nonce: randomBytes(32) })
      answers[a?.type ?? 'closed'] = (answers[a?.type ?? 'closed'] ?? 0) + 1
      if (holder.penalty.isBanned(id)) break
    }
    // the first ones are answered (a gift may be proven to anyone), then the peer is told to wait, then banned
    assert.ok((answers.digest ?? 0) >= 20, JSON.stringify(answers))
    assert.ok((answers.busy ?? 0) >= 1, JSON.stringify(answers))
    assert.ok(holder.replication!.proofs.stats.answered.busy >= 1)
    assert.equal(holder.isStarted, true)
  })

  it('a copy with a bad block is not proven on any block until mended, and mending finds every bad block of the root at once', async () => {
    // the scrub is off: the bad blocks are found only by reads, as between two passes
    let damaged = await mk('damaged', { HEARTH_SCRUB_INTERVAL_MS: '0' })
    const data = randomBytes(5 * MiB + 3)
    const root = (await damaged.blobs.add(data, { layer: 'gift' })).cid.toString()
    const leaves: string[] = []
    for await (const b of damaged.blobs.blocksOf(root)) if (b.cid.toString() !== root) leaves.push(b.cid.toString())
    assert.equal(leaves.length, 6)
    await damaged.stop()
    nodes.splice(nodes.indexOf(damaged), 1)
    // behind the store's back, while it is down: two leaves change on disk
    const db = new Database(join(dir.path, 'damaged', 'blobs.db'))
    const changed = db.prepare('UPDATE block_data SET data = randomblob(length(data)) WHERE id IN (SELECT id FROM blocks WHERE cid IN (?, ?))')
      .run(CID.parse(leaves[1]).bytes, CID.parse(leaves[4]).bytes).changes
    db.close()
    assert.equal(changed, 2)
    damaged = await mk('damaged', { HEARTH_SCRUB_INTERVAL_MS: '0' })
    // a read finds one of them
    await assert.rejects(damaged.blobs.getBlock(leaves[1]), (err: any) => err.code === 'ERR_BLOCK_QUARANTINED')
    assert.equal((await damaged.blobs.head(root)).quarantinedBlocks, 1)

    // challenged on a block that is still good, the holder admits its copy is damaged
    const challenger = await rawPeer()
    peers.push(challenger)
    await challenger.dial(multiaddr(addrOf(damaged)))
    const answer = await ask(challenger, damaged, { type: 'challenge', root, cid: leaves[0], mode: 'block', nonce: randomBytes(32) })
    assert.equal(answer?.type, 'missing')
    assert.equal(damaged.replication!.proofs.answeredFor(root)?.answer, 'missing')

    // mended from a peer that holds the blob: both bad leaves come again, not only the one a read found
    const source = await mk('source')
    await source.blobs.add(data, { layer: 'gift' })
    await damaged.connect(addrOf(source))
    const care = new ReplicaCare({ blobs: damaged.blobs, blocks: damaged.blockExchange!, log: silentLogger.forComponent('test') })
    assert.equal(await care.heal(root, deviceOfPeer(damaged.peerId)!, 'gift'), true)
    assert.equal((await damaged.blobs.head(root)).quarantinedBlocks, 0)
    const back: Buffer[] = []
    for await (const c of damaged.blobs.cat(root)) back.push(Buffer.from(c))
    assert.ok(Buffer.concat(back).equals(data), 'the whole blob reads back as it was added')
    const again = await ask(challenger, damaged, { type: 'challenge', root, cid: leaves[0], mode: 'block', nonce: randomBytes(32) })
    assert.equal(again?.type, 'block')
  })
})
