import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Repo, cbor } from '@automerge/automerge-repo'
import type { AutomergeUrl, PeerId } from '@automerge/automerge-repo'
import { WebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket'
import { WebSocket } from 'ws'
import { generateDocumentId } from '@hearth/sync'
import { spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'
import { befriend, call, connect, view } from './docs-helpers.js'

const wsUrl = (d: DaemonProc, token = d.token): string => `${d.url.replace('http', 'ws')}/automerge?token=${encodeURIComponent(token)}`

/** the close code and reason of a socket the daemon refuses or ends */
async function refused (url: string, send?: Uint8Array): Promise<{ status?: number, code?: number }> {
  return await new Promise(resolve => {
    const ws = new WebSocket(url)
    ws.on('unexpected-response', (_req, res) => { resolve({ status: res.statusCode }); ws.terminate() })
    ws.on('open', () => { if (send != null) ws.send(send) })
    ws.on('close', code => { resolve({ code }) })
    ws.on('error', () => {})
  })
}

describe('automerge-repo clients on /automerge', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  const repos: Repo[] = []
  before(async () => { dir = await tempDir() })
  after(async () => {
    await Promise.all(repos.map(async r => await r.shutdown().catch(() => {})))
    await Promise.all(daemons.map(async d => await d.kill('SIGKILL')))
    await dir.remove()
  })

  it('a stock Repo syncs documents with a daemon in both directions, and they travel on to another daemon', async () => {
    const [home, cousin] = await Promise.all(['home', 'cousin'].map(async n => await spawnDaemon(join(dir.path, n))))
    daemons.push(home, cousin)
    const homeAgent = (await call(home, 'POST', '/trust/init')).agent_id
    const cousinAgent = (await call(cousin, 'POST', '/trust/init')).agent_id
    await connect(home, cousin)
    await befriend(home, cousin, homeAgent, cousinAgent)
    await waitFor(async () => (await cousin.get(`/trust/agents/${homeAgent}`)).body.relationships?.some((r: any) => r.mutual), 20_000, 'the relationship at the cousin')

    const repo = new Repo({ network: [new WebSocketClientAdapter(wsUrl(home), 500)], peerId: 'browser-1' as PeerId, sharePolicy: async () => true })
    repos.push(repo)
    await waitFor(() => repo.peers.length > 0, 10_000, 'the daemon as the browser\'s peer')

    // daemon → browser
    const doc = await call(home, 'POST', `/docs?writers=${cousinAgent}`, { title: 'recipes', list: ['soup'] })
    const handle = await repo.find<any>(doc.url as AutomergeUrl)
    assert.deepEqual(handle.doc(), { title: 'recipes', list: ['soup'] })

    // browser → daemon, then on to the cousin's daemon (signed by home for its agent)
    handle.change((d: any) => { d.list.push('bread') })
    await waitFor(async () => (await view(home, doc.id))?.value.list.length === 2, 10_000, 'the browser\'s change at home')
    await waitFor(async () => (await view(cousin, doc.id))?.value.list.length === 2, 15_000, 'the browser\'s change at the cousin')

    // daemon → browser, live
    await call(cousin, 'PATCH', `/docs/${doc.id}`, { title: 'family recipes' })
    await waitFor(() => handle.doc().title === 'family recipes', 15_000, 'the cousin\'s change in the browser')

    // a document made in the browser belongs to the home agent
    const made = repo.create<any>({ made: 'in the browser' })
    await waitFor(async () => (await view(home, made.documentId))?.value.made === 'in the browser', 10_000, 'the browser\'s new document at home')
    assert.equal((await call(home, 'GET', `/docs/${made.documentId}/info`)).owner, homeAgent)
    const status = (await home.get('/p2p/status')).body.sync
    assert.equal(status.clients, 1)
    assert.equal(status.rejected_by_store, 0)
  })

  it('a read token syncs read-only: the Repo gets the documents, its changes and new documents are not taken', async () => {
    const d = await spawnDaemon(join(dir.path, 'reader'))
    daemons.push(d)
    await call(d, 'POST', '/trust/init')
    const { token } = await call(d, 'POST', '/tokens', { name: 'doorway', scope: 'read' })
    const doc = await call(d, 'POST', '/docs?public=true', { title: 'notice board' })
    const repo = new Repo({ network: [new WebSocketClientAdapter(wsUrl(d, token), 500)], peerId: 'doorway-1' as PeerId, sharePolicy: async () => true })
    repos.push(repo)
    const handle = await repo.find<any>(doc.url as AutomergeUrl)
    assert.deepEqual(handle.doc(), { title: 'notice board' })
    handle.change((x: any) => { x.title = 'defaced' })
    const made = repo.create<any>({ spam: true })
    // the daemon's own edits still reach the reader
    await call(d, 'PATCH', `/docs/${doc.id}`, { title: 'notice board, updated' })
    await waitFor(async () => (await view(d, doc.id))?.value.title === 'notice board, updated', 10_000, 'the daemon\'s edit')
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal((await view(d, doc.id))?.value.title, 'notice board, updated', 'the reader\'s change was not taken')
    assert.equal((await d.get(`/docs/${made.documentId}/info`)).status, 404, 'the reader created nothing')
  })

  it('refuses a client without the token, and ends one that speaks nonsense', async () => {
    const d = await spawnDaemon(join(dir.path, 'strict'))
    daemons.push(d)
    await call(d, 'POST', '/trust/init')
    assert.equal((await refused(wsUrl(d, 'not-the-token'))).status, 401)
    assert.equal((await refused(`${d.url.replace('http', 'ws')}/automerge`)).status, 401)
    const garbage = await refused(wsUrl(d), Uint8Array.from([0xff, 0x00, 0x13]))
    assert.equal(garbage.code, 1008)

    // the protocol by hand: join → peer; a request for a document that is not here → doc-unavailable
    const ws = new WebSocket(wsUrl(d))
    const inbox: any[] = []
    ws.on('message', data => { inbox.push(cbor.decode(new Uint8Array(data as Buffer))) })
    await new Promise(resolve => ws.on('open', resolve))
    ws.send(cbor.encode({ type: 'join', senderId: 'by-hand', peerMetadata: {}, supportedProtocolVersions: ['1'] }))
    await waitFor(() => inbox.some(m => m.type === 'peer'), 5000, 'the peer message')
    assert.equal(inbox[0].targetId, 'by-hand')
    assert.equal(inbox[0].selectedProtocolVersion, '1')
    const unknown = generateDocumentId().id
    ws.send(cbor.encode({ type: 'request', senderId: 'by-hand', targetId: inbox[0].senderId, documentId: unknown, data: new Uint8Array([0x42, 0, 0, 0, 0]) }))
    await waitFor(() => inbox.some(m => m.type === 'doc-unavailable' && m.documentId === unknown), 5000, 'doc-unavailable')
    // a message over the cap closes the socket (1009), and nothing else happens
    const closed = new Promise<number>(resolve => ws.on('close', code => resolve(code)))
    ws.send(new Uint8Array(9 * 1024 * 1024))
    assert.equal(await closed, 1009)
    // the daemon is fine afterwards
    assert.equal((await d.get('/health')).status, 200)
  })

  it('lets one token hold at most 128 of the 256 sockets, so another client still gets in', async () => {
    const d = await spawnDaemon(join(dir.path, 'crowded'))
    daemons.push(d)
    await call(d, 'POST', '/trust/init')
    const leaked = (await call(d, 'POST', '/tokens', { name: 'leaked', scope: 'read' })).token
    const open: WebSocket[] = []
    try {
      const opened = async (url: string): Promise<WebSocket> => await new Promise((resolve, reject) => {
        const ws = new WebSocket(url)
        ws.on('open', () => { resolve(ws) })
        ws.on('unexpected-response', (_req, res) => { reject(new Error(`status ${String(res.statusCode)}`)); ws.terminate() })
        ws.on('error', reject)
      })
      for (let i = 0; i < 128; i++) open.push(await opened(wsUrl(d, leaked)))
      const over = await refused(wsUrl(d, leaked))
      assert.equal(over.status, 429, 'the 129th socket of one token')
      open.push(await opened(wsUrl(d)))
      // a closed socket gives its slot back
      open.shift()!.close()
      await waitFor(async () => await opened(wsUrl(d, leaked)).then(ws => { open.push(ws); return true }, () => false), 5000, 'the freed slot')
    } finally {
      for (const ws of open) ws.terminate()
    }
  })
})
