import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { tempDir, waitFor } from './helpers.js'

const startNode = async (data: string): Promise<HearthNode> => {
  const node = new HearthNode(loadConfig({ env: { HEARTH_DATA: data, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true' } }), { logger: silentLogger })
  await node.start()
  return node
}
const tcpAddr = (n: HearthNode): string => n.p2pStatus().addresses.find(a => a.includes('/tcp/') && !a.includes('/ws'))!

describe('documents along a line of daemons', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const nodes: HearthNode[] = []
  before(async () => { dir = await tempDir() })
  after(async () => { await Promise.all(nodes.map(async n => await n.stop())); await dir.remove() })

  it('three daemons in a line converge through the middle one; a reader\'s edits never travel', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(async n => await startNode(`${dir.path}/${n}`)))
    nodes.push(a, b, c)
    for (const n of [a, b, c]) await n.trust.initAgent()
    const [aAgent, bAgent, cAgent] = [a, b, c].map(n => n.trust.agentId!)
    // a and c would find each other through b's DHT: each refuses the other (the connection gater's ban),
    // as two homes behind NATs that cannot reach each other
    a.penalty.strike(c.peerId.toString(), 'test: keep a and c apart', 100)
    c.penalty.strike(a.peerId.toString(), 'test: keep a and c apart', 100)
    await a.connect(tcpAddr(b))
    await c.connect(tcpAddr(b))
    a.trust.relate(bAgent, 'family', 30)
    b.trust.relate(aAgent, 'family', 30)
    b.trust.relate(cAgent, 'friend', 30)
    c.trust.relate(bAgent, 'friend', 30)
    for (const n of [a, b, c]) {
      await waitFor(() => n.trust.graph.relationships(bAgent).filter(r => r.mutual).length === 2, 15_000, 'both relationships everywhere')
    }

    const aDocs = await a.docs.open()
    const doc = aDocs.store.create({ owner: aAgent, readers: [bAgent], writers: [cAgent], content: { log: ['from a'] } })
    const cDocs = await c.docs.open()
    await waitFor(() => cDocs.store.has(doc.id) && !cDocs.store.isEmpty(doc.id), 20_000, 'the document to reach c through b')
    cDocs.store.change(doc.id, (d: any) => { d.log.push('from c') })
    await waitFor(() => (aDocs.store.view(doc.id).value as any).log.length === 2, 15_000, 'c\'s change to reach a through b')

    // b only reads: the store refuses its own edit, and nothing of it travels
    const bDocs = await b.docs.open()
    assert.throws(() => bDocs.store.change(doc.id, (d: any) => { d.log.push('from b') }), (err: any) => err.code === 'ERR_ACCESS_DENIED' || err.code === 'ERR_UNAUTHORIZED_WRITER')
    await new Promise(resolve => setTimeout(resolve, 300))
    for (const docs of [aDocs, bDocs, cDocs]) assert.deepEqual(docs.store.view(doc.id).value, { log: ['from a', 'from c'] })
    assert.equal(a.p2pStatus().peers.some(p => p.peer_id === c.peerId.toString()), false, 'a and c never connected')
    assert.deepEqual(a.syncStatus().sessions.map(s => s.peer_id), [b.peerId.toString()])
    assert.equal(a.syncStatus().rejected_messages + b.syncStatus().rejected_messages + c.syncStatus().rejected_messages, 0)
  })
})
