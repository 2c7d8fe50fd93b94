import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import * as A from '@automerge/automerge'
import { createMemoryChannelPair, decodeMessage, encodeMessage, generateDocumentId } from '../src/index.js'
import type { DocumentId, WireMessage } from '../src/index.js'
import { Directory, link, makeNode, tempDir, waitFor } from './helpers.js'

describe('caps', () => {
  it('refuses oversized changes, local or remote, and stores nothing', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d, { maxChangeBytes: 2048 })
    const b = makeNode(dir, 'b', d)
    t.after(() => { a.close(); b.close() })
    assert.throws(() => a.store.create({ owner: a.agentId, content: { blob: 'x'.repeat(4096) } }), { code: 'ERR_CHANGE_TOO_LARGE' })
    assert.equal(a.store.stats().documents, 0)
    const { id } = a.store.create({ owner: a.agentId, writers: [b.agentId], content: { s: '' } })
    const heads = a.store.heads(id)
    assert.throws(() => a.store.change(id, (x: any) => { x.s = 'y'.repeat(4096) }), { code: 'ERR_CHANGE_TOO_LARGE' })
    assert.deepEqual(a.store.heads(id), heads)
    assert.deepEqual(a.store.view(id).value, { s: '' })
    // the same from a peer: b (no cap) writes a big change, a refuses it
    b.store.importHeader(a.store.signedHeader(id))
    b.store.applyChanges(id, A.getAllChanges(a.store.doc(id)), { signatures: a.store.allSignatures(id) })
    b.store.change(id, (x: any) => { x.s = 'z'.repeat(4096) })
    const big = A.getAllChanges(b.store.doc(id))
    assert.throws(() => a.store.applyChanges(id, big, { signatures: b.store.allSignatures(id) }), { code: 'ERR_CHANGE_TOO_LARGE' })
    assert.deepEqual(a.store.heads(id), heads)
  })

  it('bounds documents per session and message sizes', async t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d, { engine: { maxDocsPerSession: 3, maxMessageBytes: 4096 } })
    t.after(() => a.close())
    const [mine, theirs] = createMemoryChannelPair()
    const s = a.engine.connect('z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', theirs)
    const got: WireMessage[] = []
    mine.onMessage(m => got.push(decodeMessage(m)))
    const ids = Array.from({ length: 5 }, () => generateDocumentId().id as DocumentId)
    await mine.send(encodeMessage({ type: 'subscribe', docs: ids }))
    await waitFor(() => got.filter(m => m.type === 'doc-error').length === 5, 5000, 'notices')
    const codes = got.flatMap(m => m.type === 'doc-error' ? [m.code] : []).sort()
    assert.deepEqual(codes, ['ERR_DOC_NOT_FOUND', 'ERR_DOC_NOT_FOUND', 'ERR_DOC_NOT_FOUND', 'ERR_TOO_MANY_DOCUMENTS', 'ERR_TOO_MANY_DOCUMENTS'])
    assert.equal(s.stats().peerSubscribed, 3)
    assert.throws(() => s.subscribe(Array.from({ length: 4 }, () => generateDocumentId().id)), { code: 'ERR_TOO_MANY_DOCUMENTS' })
    await mine.send(new Uint8Array(5000))
    assert.equal(s.stats().rejectedMessages, 1)
    // a document whose catch-up exceeds the message cap is not sent, and the peer is told
    const { id } = a.store.create({ owner: a.agentId, public: true, content: { noise: randomBytes(6000).toString('base64') } })
    const b = makeNode(dir, 'b', d)
    t.after(() => b.close())
    const [, other] = link(a, b)
    other.subscribe([id])
    await waitFor(() => (other.stats().peerErrors.ERR_MESSAGE_TOO_LARGE ?? 0) === 1, 5000, 'too large notice')
  })
})
