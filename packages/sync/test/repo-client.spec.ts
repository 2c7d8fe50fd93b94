import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as A from '@automerge/automerge'
import { NetworkAdapter, Repo } from '@automerge/automerge-repo'
import type { AutomergeUrl, Message, PeerId } from '@automerge/automerge-repo'
import { generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import type { ClientMessage, ClientSession, SyncEngine } from '../src/index.js'
import { Directory, makeNode, tempDir, waitFor } from './helpers.js'

/**
 * What the daemon's WebSocket endpoint does, minus the socket and CBOR: a
 * stock automerge-repo Repo on one side, a ClientSession on the other.
 */
class EngineAdapter extends NetworkAdapter {
  session?: ClientSession
  constructor (private readonly engine: SyncEngine, private readonly agent: string, private readonly allowCreate = true) { super() }
  isReady (): boolean { return true }
  whenReady (): Promise<void> { return Promise.resolve() }
  connect (peerId: PeerId): void {
    this.peerId = peerId
    this.session = this.engine.openClientSession(`repo:${peerId}`, {
      agent: this.agent,
      allowCreate: this.allowCreate,
      send: (m: ClientMessage) => {
        setImmediate(() => this.emit('message', { ...m, senderId: 'daemon' as PeerId, targetId: peerId } as Message))
      }
    })
    setImmediate(() => this.emit('peer-candidate', { peerId: 'daemon' as PeerId, peerMetadata: { isEphemeral: true } }))
  }
  send (message: Message): void {
    if (message.type === 'sync' || message.type === 'request') {
      this.session?.receive({ type: message.type, documentId: message.documentId as string, data: message.data as Uint8Array })
    }
  }
  disconnect (): void { this.session?.close() }
}

describe('automerge-repo clients (custodial)', () => {
  it('a stock Repo finds, edits and creates documents; its changes are signed custodially', async t => {
    const dir = tempDir(t)
    const d = new Directory()
    const n = makeNode(dir, 'daemon', d)
    const webUser = keyIdFromPublicKey(generateKeyPair().publicKey)
    const adapter = new EngineAdapter(n.engine, webUser)
    const repo = new Repo({ network: [adapter], peerId: 'browser' as PeerId, sharePolicy: async () => true })
    t.after(async () => { await repo.shutdown(); n.close() })
    await waitFor(() => repo.peers.length > 0, 5000, 'the daemon as a peer')

    const { url } = n.store.create({ owner: n.agentId, writers: [webUser], content: { title: 'from the daemon', items: [] } })
    const handle = await repo.find<any>(url as AutomergeUrl)
    assert.deepEqual(handle.doc(), { title: 'from the daemon', items: [] })

    handle.change((x: any) => { x.items.push('from the browser') })
    await waitFor(() => (n.store.view(url).value as any).items.length === 1, 5000, 'browser change at the daemon')
    const all = A.getAllChanges(n.store.doc(url))
    const kinds = n.store.signaturesForSyncMessage(url, A.encodeSyncMessage({ heads: [], need: [], have: [], changes: all })).map(s => s.kind)
    assert.deepEqual(kinds.sort(), ['custodial', 'device'])
    n.store.change(url, (x: any) => { x.title = 'edited by the daemon' })
    await waitFor(() => handle.doc().title === 'edited by the daemon', 5000, 'daemon change in the browser')

    const created = repo.create<any>({ made: 'in the browser' })
    await waitFor(() => n.store.has(created.url) && (n.store.view(created.url).value as any)?.made === 'in the browser', 5000, 'created document at the daemon')
    assert.equal(n.store.info(created.url).owner, webUser)
    assert.equal(adapter.session?.stats().rejectedMessages, 0)

    // a document the agent may not read is unavailable, exactly like an unknown one
    const secret = n.store.create({ owner: n.agentId, content: { s: 1 } })
    await assert.rejects(repo.find(secret.url as AutomergeUrl))
  })

  it('a reader receives the document but its edits are never applied', async t => {
    const dir = tempDir(t)
    const d = new Directory()
    const n = makeNode(dir, 'daemon', d)
    const reader = keyIdFromPublicKey(generateKeyPair().publicKey)
    const adapter = new EngineAdapter(n.engine, reader, false)
    const repo = new Repo({ network: [adapter], peerId: 'reader' as PeerId, sharePolicy: async () => true })
    t.after(async () => { await repo.shutdown(); n.close() })
    await waitFor(() => repo.peers.length > 0, 5000, 'the daemon as a peer')
    const { url } = n.store.create({ owner: n.agentId, readers: [reader], content: { v: 1 } })
    const handle = await repo.find<any>(url as AutomergeUrl)
    assert.deepEqual(handle.doc(), { v: 1 })
    handle.change((x: any) => { x.v = 666 })
    n.store.change(url, (x: any) => { x.w = 2 })
    await waitFor(() => handle.doc().w === 2, 5000, 'daemon change reaching the reader')
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.deepEqual(n.store.view(url).value, { v: 1, w: 2 })
    const created = repo.create<any>({ x: 1 })
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(n.store.has(created.url), false, 'creating is not allowed for this client')
  })
})
