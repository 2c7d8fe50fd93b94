import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
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
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

const MiB = 1024 * 1024

describe('blocks between daemons', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  before(async () => { dir = await tempDir() })
  after(async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))); await dir.remove() })

  it('fetches a blob on GET only for a peer the owner relates to, read-through into the cache', async () => {
    const [owner, stranger] = await Promise.all(['owner', 'stranger'].map(async n => await spawnDaemon(join(dir.path, n), { HEARTH_FETCH_TIMEOUT_MS: '10000' })))
    daemons.push(owner, stranger)
    const post = async (d: DaemonProc, path: string, body?: unknown): Promise<any> => {
      const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })
      return await res.json()
    }
    await post(owner, '/trust/init')
    const strangerAgent = (await post(stranger, '/trust/init')).agent_id
    const bytes = randomBytes(3 * MiB + 12345)
    const added = await (await fetch(`${owner.url}/blob`, { method: 'POST', headers: { authorization: `Bearer ${owner.token}` }, body: bytes })).json() as any
    await post(stranger, '/p2p/connect', { addr: (await owner.get('/p2p/status')).body.addresses[0] })
    await waitFor(async () => (await owner.get(`/trust/agents/${strangerAgent}`)).status === 200, 10_000, 'the owner to learn the stranger\'s certificate')

    const refused = await stranger.get(`/blob/${added.cid}`)
    assert.equal(refused.status, 404, 'a hash alone does not grant access')
    assert.equal(refused.body.error, 'ERR_BLOB_NOT_FOUND')

    await post(owner, '/trust/relationships', { agent: strangerAgent, kind: 'family' })
    const res = await fetch(`${stranger.url}/blob/${added.cid}`)
    assert.equal(res.status, 200)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes))
    assert.deepEqual((await stranger.get(`/blob/${added.cid}/info`)).body.layers, ['cache'])
  })
})

/** A libp2p peer that speaks the block protocol the way a test wants. */
async function fakeProvider (serve: (msg: any, write: (m: unknown) => Promise<void>) => Promise<void>): Promise<Libp2p> {
  const node = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
  await node.handle('/hearth/blocks/1.0.0', async stream => {
    const lp = lpStream(stream, { maxDataLength: 4 * MiB })
    try {
      const msg = dagCbor.decode<any>((await lp.read()).subarray())
      await serve(msg, async m => { await lp.write(dagCbor.encode(m)) })
      await stream.close()
    } catch { stream.abort(new Error('done')) }
  })
  return node
}

describe('block fetches against unreliable providers', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let source: HearthNode
  let fetcher: HearthNode
  let cid: string
  let blocks: Map<string, Uint8Array>
  const fakes: Libp2p[] = []
  before(async () => {
    dir = await tempDir()
    const mk = async (name: string, env: Record<string, string> = {}): Promise<HearthNode> => {
      const n = new HearthNode(loadConfig({ env: { HEARTH_DATA: join(dir.path, name), P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', ...env } }), { logger: silentLogger })
      await n.start()
      return n
    }
    source = await mk('source')
    fetcher = await mk('fetcher')
    const r = await source.blobs.add(randomBytes(5 * MiB + 77), { layer: 'gift' })
    cid = r.cid.toString()
    blocks = new Map()
    for await (const b of source.blobs.blocksOf(cid)) blocks.set(b.cid.toString(), await source.blobs.getBlock(b.cid))
  })
  after(async () => {
    await Promise.all(fakes.map(async f => await f.stop()))
    await fetcher?.stop()
    await source?.stop()
    await dir.remove()
  })
  const addr = (n: Libp2p): string => n.getMultiaddrs()[0].toString()

  it('rejects a corrupt block, bans its sender, and stores nothing unverified', async () => {
    const liar = await fakeProvider(async (msg, write) => {
      if (msg.type === 'have') return await write({ type: 'have', cids: [...blocks.keys()], complete: true })
      for (const c of msg.cids) await write({ type: 'block', cid: c, bytes: randomBytes(blocks.get(c)?.length ?? 100) })
      await write({ type: 'end' })
    })
    fakes.push(liar)
    await fetcher.connect(addr(liar))
    await assert.rejects(fetcher.blockExchange!.fetch(cid, { providers: [liar.peerId] }), { code: 'ERR_NO_PROVIDERS' })
    assert.ok(fetcher.blockExchange!.stats.corrupt >= 1)
    assert.equal(fetcher.penalty.isBanned(liar.peerId.toString()), true)
    assert.equal(await fetcher.blobs.hasBlock(cid), false)
  })

  it('resumes an interrupted fetch without asking again for what arrived', async () => {
    // serves the root and one leaf, then nothing
    let served = 0
    const flaky = await fakeProvider(async (msg, write) => {
      if (msg.type === 'have') return await write({ type: 'have', cids: [...blocks.keys()], complete: true })
      for (const c of msg.cids) {
        if (served >= 2) break
        await write({ type: 'block', cid: c, bytes: blocks.get(c) })
        served++
      }
      await write({ type: 'end' })
    })
    fakes.push(flaky)
    await fetcher.connect(addr(flaky))
    await assert.rejects(fetcher.blockExchange!.fetch(cid, { providers: [flaky.peerId] }), { code: 'ERR_NO_PROVIDERS' })
    const before = fetcher.blockExchange!.stats.blocksReceived
    assert.equal(served, 2)

    const sourceAddr = source.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!
    await fetcher.connect(sourceAddr)
    const result = await fetcher.blockExchange!.fetch(cid, { providers: [source.peerId] })
    assert.equal(result.cid, cid)
    assert.equal(fetcher.blockExchange!.stats.blocksReceived - before, blocks.size - 2, 'only the blocks that had not arrived')
    const back: Buffer[] = []
    for await (const chunk of fetcher.blobs.cat(cid)) back.push(Buffer.from(chunk))
    const original: Buffer[] = []
    for await (const chunk of source.blobs.cat(cid)) original.push(Buffer.from(chunk))
    assert.ok(Buffer.concat(back).equals(Buffer.concat(original)))
  })

  it('answers GET with 504 when providers never deliver', async () => {
    const dir2 = await tempDir()
    const slow = await fakeProvider(async (msg, write) => {
      if (msg.type === 'have') return await write({ type: 'have', cids: [cid], complete: true })
      await new Promise(resolve => setTimeout(resolve, 20_000))
    })
    fakes.push(slow)
    const node = new HearthNode(loadConfig({ env: { HEARTH_DATA: dir2.path, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', HEARTH_FETCH_TIMEOUT_MS: '1500' } }), { logger: silentLogger })
    await node.start()
    const { buildApi } = await import('../src/index.js')
    const app = await buildApi({ node })
    try {
      await node.connect(addr(slow))
      const missing = (await source.blobs.add(randomBytes(100), { layer: 'gift' })).cid.toString()
      const t0 = Date.now()
      const res = await app.inject(`/blob/${missing}`)
      assert.equal(res.statusCode, 504, res.body)
      assert.equal(res.json().error, 'ERR_FETCH_TIMEOUT')
      assert.ok(Date.now() - t0 < 10_000)
    } finally {
      await app.close()
      await node.stop()
      await dir2.remove()
    }
  })
})
