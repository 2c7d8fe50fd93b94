import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'
import { befriend, call, connect, view } from './docs-helpers.js'

const sessionWith = async (d: DaemonProc, peer: DaemonProc): Promise<any> =>
  (await d.get('/p2p/status')).body.sync.sessions.find((s: any) => s.peer_id === peer.peerId)

describe('documents between daemons', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  before(async () => { dir = await tempDir() })
  after(async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))); await dir.remove() })

  it('two daemons edit one document while disconnected, reconnect and converge', async () => {
    const [a, b] = await Promise.all(['a', 'b'].map(async n => await spawnDaemon(join(dir.path, `pair-${n}`))))
    daemons.push(a, b)
    const aAgent = (await call(a, 'POST', '/trust/init')).agent_id
    const bAgent = (await call(b, 'POST', '/trust/init')).agent_id
    await connect(a, b)
    await befriend(a, b, aAgent, bAgent)
    await waitFor(async () => (await b.get(`/trust/agents/${aAgent}`)).body.relationships?.some((r: any) => r.mutual), 20_000, 'the relationship at b')
    await waitFor(async () => (await a.get(`/trust/agents/${bAgent}`)).body.relationships?.some((r: any) => r.mutual), 20_000, 'the relationship at a')

    const doc = await call(a, 'POST', `/docs?writers=${bAgent}`, { title: 'trip', packing: {} })
    await waitFor(async () => (await view(b, doc.id))?.value.title === 'trip', 15_000, 'the document to reach b')

    await call(a, 'DELETE', `/p2p/peers/${b.peerId}`)
    await waitFor(async () => (await a.get('/p2p/status')).body.peers.length === 0, 10_000, 'the disconnection')
    await call(a, 'PATCH', `/docs/${doc.id}`, { packing: { tent: true }, title: 'camping trip' })
    await call(b, 'PATCH', `/docs/${doc.id}`, { packing: { stove: true } })
    assert.notDeepEqual((await view(a, doc.id)).heads, (await view(b, doc.id)).heads)

    await connect(b, a)
    const expected = { title: 'camping trip', packing: { tent: true, stove: true } }
    await waitFor(async () => JSON.stringify((await view(a, doc.id))?.value) === JSON.stringify((await view(b, doc.id))?.value) && (await view(a, doc.id)).value.packing.stove === true, 15_000, 'convergence')
    assert.deepEqual((await view(a, doc.id)).value, expected)
    assert.deepEqual((await view(a, doc.id)).heads.sort(), (await view(b, doc.id)).heads.sort())
    const status = (await a.get('/p2p/status')).body.sync
    assert.equal(status.rejected_messages, 0)
    assert.equal(status.sessions.length, 1)
  })

  it('after a restart, a second sync sends only what changed', async () => {
    const [a, first] = await Promise.all(['a', 'b'].map(async n => await spawnDaemon(join(dir.path, `restart-${n}`))))
    let b = first
    daemons.push(a, b)
    const aAgent = (await call(a, 'POST', '/trust/init')).agent_id
    const bAgent = (await call(b, 'POST', '/trust/init')).agent_id
    await connect(a, b)
    await befriend(a, b, aAgent, bAgent)
    await waitFor(async () => (await b.get(`/trust/agents/${aAgent}`)).body.relationships?.some((r: any) => r.mutual), 20_000, 'the relationship at b')
    const ids: string[] = []
    for (let i = 0; i < 20; i++) ids.push((await call(a, 'POST', `/docs?readers=${bAgent}`, { n: i, text: randomBytes(1500).toString('base64') })).id)
    await waitFor(async () => (await b.get('/p2p/status')).body.sync.documents === 20, 20_000, 'twenty documents at b')
    const firstSync = await sessionWith(b, a)
    assert.ok(firstSync.received_bytes > 20 * 1500, `first sync moved the documents (${firstSync.received_bytes} bytes)`)

    await b.kill('SIGTERM')
    await call(a, 'PATCH', `/docs/${ids[7]}`, { n: 700 })
    b = await spawnDaemon(b.dataDir)
    daemons.push(b)
    await connect(b, a)
    await waitFor(async () => (await view(b, ids[7]))?.value.n === 700, 15_000, 'the change to reach b after its restart')
    const second = await waitFor(async () => {
      const s = await sessionWith(b, a)
      return s != null && s.pending === 0 && s.in_flight === 0 ? s : undefined
    }, 10_000, 'the second sync to settle')
    assert.ok(second.received_bytes < firstSync.received_bytes / 5, `second sync: ${second.received_bytes} bytes received, first: ${firstSync.received_bytes}`)
    assert.ok(second.received_bytes < 20 * 1000, 'no document was sent whole again')
  })
  it('a document offered before the two agents are linked arrives once they are; strangers get nothing, not even by asking', async () => {
    const [a, b, stranger] = await Promise.all(['a', 'b', 's'].map(async n => await spawnDaemon(join(dir.path, `late-${n}`))))
    daemons.push(a, b, stranger)
    const [aAgent, bAgent, sAgent] = await Promise.all([a, b, stranger].map(async d => (await call(d, 'POST', '/trust/init')).agent_id))
    await connect(a, b)
    await connect(stranger, a)
    const doc = await call(a, 'POST', `/docs?readers=${bAgent},${sAgent}`, { early: true })
    await new Promise(resolve => setTimeout(resolve, 1500))
    // (counted, not read: reading a document by id would fetch it from peers, as a user asking for it would)
    const held = async (d: DaemonProc): Promise<number> => (await d.get('/p2p/status')).body.sync.documents
    assert.equal(await held(b), 0, 'b takes nothing offered by an agent it has no link with')
    await befriend(a, b, aAgent, bAgent)
    await waitFor(async () => await held(b) === 1, 20_000, 'the document at b once the agents are linked')
    assert.equal((await view(b, doc.id)).value.early, true)
    // the stranger is named in the ACL but has no link with a: nothing is pushed onto it
    await new Promise(resolve => setTimeout(resolve, 1000))
    assert.equal(await held(stranger), 0)
    // nor does it fetch it when asked by id: strangers are not asked (the first header for an id wins)
    const asked = await fetch(`${stranger.url}/cache/docs/${doc.id}`, { headers: { authorization: `Bearer ${stranger.token}` } })
    assert.equal(asked.status, 404)
  })
})
