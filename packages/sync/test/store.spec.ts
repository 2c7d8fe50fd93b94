import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as A from '@automerge/automerge'
import { generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import { actorIdFromDevice, changeSigningMessage, createDeviceSigner, generateDocumentId, parseDocumentId } from '../src/index.js'
import type { ChangeSignature } from '../src/index.js'
import { encodeHeader, signHeader } from '../src/header.js'
import { Directory, makeNode, tempDir } from './helpers.js'

describe('document store', () => {
  it('creates a document from JSON, changes it, and reads it back after a reopen', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const n = makeNode(dir, 'a', d)
    t.after(() => n.close())
    const info = n.store.create({ owner: n.agentId, content: { title: 'hello', items: [1, 2] } })
    assert.equal(info.url, `automerge:${info.id}`)
    assert.equal(info.owner, n.agentId)
    assert.deepEqual(info.acl, { owner: n.agentId, writers: [], readers: [], public: false })
    const r = n.store.change(info.url, doc => { doc.title = 'hello, world'; doc.items.push(3) })
    assert.ok(r.hash != null)
    assert.equal(n.store.change(info.id, () => {}).hash, null, 'an empty change stores nothing')
    const before = n.store.view(info.id)
    assert.deepEqual(before.value, { title: 'hello, world', items: [1, 2, 3] })
    n.reopen()
    assert.deepEqual(n.store.view(info.id), before)
    assert.deepEqual(n.store.info(info.id).heads, before.heads)
    // the binary is a plain Automerge document, and its changes carry this device's actor
    const loaded = A.load(n.store.save(info.id))
    assert.deepEqual(A.toJS(loaded), before.value)
    for (const c of A.getAllChanges(loaded)) assert.equal(A.decodeChange(c).actor, actorIdFromDevice(n.deviceId))
    assert.equal(n.store.stats().signatures, 2)
  })

  it('answers stable error codes for unknown, malformed and forbidden operations', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const n = makeNode(dir, 'a', d)
    t.after(() => n.close())
    assert.throws(() => n.store.info('nonsense'), { code: 'ERR_INVALID_DOCUMENT_ID' })
    assert.throws(() => n.store.view(generateDocumentId().url), { code: 'ERR_DOC_NOT_FOUND' })
    const stranger = keyIdFromPublicKey(generateKeyPair().publicKey)
    assert.throws(() => n.store.create({ owner: stranger }), { code: 'ERR_ACCESS_DENIED' })
    assert.throws(() => n.store.create({ owner: n.agentId, content: [] as any }), { code: 'ERR_INVALID_CONTENT' })
    const { id } = n.store.create({ owner: n.agentId })
    assert.throws(() => n.store.create({ owner: n.agentId, id }), { code: 'ERR_DOC_EXISTS' })
    assert.throws(() => n.store.change(id, () => { throw new Error('boom') }), { code: 'ERR_INVALID_CONTENT' })
    assert.deepEqual(n.store.view(id).value, {})
    n.store.change(id, doc => { doc.ok = true })
    assert.deepEqual(n.store.view(id).value, { ok: true })
  })

  it('applies signed changes from a writer and refuses forged, unbound and unauthorised ones whole', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    const b = makeNode(dir, 'b', d)
    const outsider = makeNode(dir, 'c', d)
    t.after(() => { a.close(); b.close(); outsider.close() })
    const { id } = a.store.create({ owner: a.agentId, writers: [b.agentId], content: { n: 0 } })
    const idBytes = parseDocumentId(id).bytes
    // b builds changes on a copy of the document with its own actor and signs them
    const signFor = (key = b.key, doc = A.load<any>(a.store.save(id), { actor: actorIdFromDevice(keyIdFromPublicKey(key.publicKey)) })) => {
      const next = A.change(doc, (x: any) => { x.n = (x.n as number) + 1 })
      const bytes = A.getLastLocalChange(next) as Uint8Array
      const hash = A.decodeChange(bytes).hash
      const signer = createDeviceSigner(key)
      const sig: ChangeSignature = { hash, kind: 'device', device: signer.deviceId, signature: signer.sign(changeSigningMessage('device', idBytes, Buffer.from(hash, 'hex'))) }
      return { bytes, sig, next }
    }
    const good = signFor()
    const heads0 = a.store.heads(id)

    const forged = { ...good.sig, signature: Uint8Array.from(good.sig.signature).fill(7, 0, 8) }
    assert.throws(() => a.store.applyChanges(id, [good.bytes], { signatures: [forged] }), { code: 'ERR_INVALID_SIGNATURE' })
    assert.throws(() => a.store.applyChanges(id, [good.bytes], { signatures: [] }), { code: 'ERR_INVALID_SIGNATURE' })
    // a valid signature by another device than the one the actor is bound to
    const c = createDeviceSigner(outsider.key)
    const rebound = { ...good.sig, device: c.deviceId, signature: c.sign(changeSigningMessage('device', idBytes, Buffer.from(good.sig.hash, 'hex'))) }
    assert.throws(() => a.store.applyChanges(id, [good.bytes], { signatures: [rebound] }), { code: 'ERR_INVALID_SIGNATURE' })
    // a well-signed change by a device whose agent is not in the ACL
    const bad = signFor(outsider.key)
    assert.throws(() => a.store.applyChanges(id, [bad.bytes], { signatures: [bad.sig] }), { code: 'ERR_UNAUTHORIZED_WRITER' })
    // one bad change spoils the message: the good one is not applied either
    assert.throws(() => a.store.applyChanges(id, [good.bytes, bad.bytes], { signatures: [good.sig, bad.sig] }), { code: 'ERR_UNAUTHORIZED_WRITER' })
    // the signature covers the document id: replaying it into another document fails
    const other = a.store.create({ owner: a.agentId, writers: [b.agentId] })
    assert.throws(() => a.store.applyChanges(other.id, [good.bytes], { signatures: [good.sig] }), { code: 'ERR_INVALID_SIGNATURE' })
    assert.deepEqual(a.store.heads(id), heads0)
    assert.equal(a.store.stats().rejectedMessages, 6)

    const r = a.store.applyChanges(id, [good.bytes], { signatures: [good.sig] })
    assert.equal(r.accepted, 1)
    assert.deepEqual((a.store.view(id).value as any).n, 1)
    assert.equal(a.store.applyChanges(id, [good.bytes], { signatures: [] }).accepted, 0, 'a known change needs no signature again')
  })

  it('signs custodially for an agent in the ACL and refuses others', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    t.after(() => a.close())
    const webUser = keyIdFromPublicKey(generateKeyPair().publicKey)
    const { id } = a.store.create({ owner: a.agentId, writers: [webUser], content: { n: 0 } })
    const client = A.change(A.load<any>(a.store.save(id)), (x: any) => { x.n = 5 })
    const change = A.getLastLocalChange(client) as Uint8Array
    assert.throws(() => a.store.applyChanges(id, [change], { custodialFor: keyIdFromPublicKey(generateKeyPair().publicKey) }), { code: 'ERR_ACCESS_DENIED' })
    assert.equal(a.store.applyChanges(id, [change], { custodialFor: webUser }).accepted, 1)
    assert.deepEqual(a.store.view(id).value, { n: 5 })
    const sigs = a.store.signaturesForSyncMessage(id, A.encodeSyncMessage({ heads: [], need: [], have: [], changes: [change] }))
    assert.equal(sigs.length, 1)
    assert.equal(sigs[0].kind, 'custodial')
    assert.equal(sigs[0].device, a.deviceId)
    assert.throws(() => a.store.change(id, (x: any) => { x.n = 6 }, { custodialFor: keyIdFromPublicKey(generateKeyPair().publicKey) }), { code: 'ERR_ACCESS_DENIED' })
    a.store.change(id, (x: any) => { x.n = 6 }, { custodialFor: webUser })
    assert.deepEqual(a.store.view(id).value, { n: 6 })
  })

  it('compaction racing writes loses nothing', async t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    t.after(() => a.close())
    const { id } = a.store.create({ owner: a.agentId, content: { log: [] } })
    let expected = 0
    const write = (): void => { a.store.change(id, (x: any) => { x.log.push(expected) }); expected++ }
    for (let i = 0; i < 50; i++) write()
    for (let round = 0; round < 10; round++) {
      // compact() builds the snapshot synchronously, then yields before its transaction:
      // the writes below land in between, are not covered, and must keep their rows
      const p = a.store.compact(id)
      for (let i = 0; i < 5; i++) write()
      const second = await a.store.compact(id)
      assert.equal(second.compacted, false, 'one compaction per document at a time')
      const r = await p
      assert.ok(r.compacted)
      assert.ok(a.store.info(id).pending_changes >= 5)
    }
    a.reopen()
    assert.deepEqual((a.store.view(id).value as any).log, Array.from({ length: expected }, (_, i) => i))
    const final = await a.store.compact(id)
    assert.equal(final.droppedChanges, 5, 'only the last round was left uncovered')
    assert.equal(a.store.info(id).pending_changes, 0)
    a.reopen()
    assert.equal((a.store.view(id).value as any).log.length, expected)
    assert.equal(a.store.stats().signatures, expected + 1, 'signatures outlive compaction')
  })

  it('keeps at most cacheSize documents loaded', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d, { cacheSize: 3 })
    t.after(() => a.close())
    const ids = Array.from({ length: 10 }, (_, i) => a.store.create({ owner: a.agentId, content: { i } }).id)
    for (const id of ids) a.store.view(id)
    assert.equal(a.store.stats().loadedDocuments, 3)
    ids.forEach((id, i) => assert.deepEqual(a.store.view(id).value, { i }))
    assert.deepEqual(a.store.list({ limit: 100 }).length, 10)
  })

  it('updates the ACL with a new signed header version', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    const b = makeNode(dir, 'b', d)
    t.after(() => { a.close(); b.close() })
    const { id } = a.store.create({ owner: a.agentId })
    const v1 = a.store.signedHeader(id)
    assert.equal(b.store.importHeader(v1), true)
    assert.equal(a.store.updateAcl(id, { readers: [b.agentId] }).header_version, 2)
    assert.equal(b.store.importHeader(a.store.signedHeader(id)), true)
    assert.equal(b.store.importHeader(v1), false, 'an older header does not roll the ACL back')
    assert.deepEqual(b.store.acl(id).readers, [b.agentId])
    assert.throws(() => b.store.updateAcl(id, { public: true }), { code: 'ERR_ACCESS_DENIED' })
    const tampered = { ...a.store.signedHeader(id), bytes: new TextEncoder().encode(new TextDecoder().decode(a.store.signedHeader(id).bytes).replace('"public":false', '"public":true ')) }
    assert.throws(() => b.store.importHeader(tampered), { code: 'ERR_INVALID_HEADER' })
  })

  it('refuses a header whose signature does not cover its bytes, or whose signer is no device of the owner', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    const b = makeNode(dir, 'b', d)
    const c = makeNode(dir, 'c', d)
    t.after(() => { a.close(); b.close(); c.close() })
    const { id } = a.store.create({ owner: a.agentId })
    const genuine = a.store.signedHeader(id)
    const header = JSON.parse(new TextDecoder().decode(genuine.bytes))
    // canonically encoded, so only the signature can refuse it: the owner's signature over other bytes
    const widened = { ...genuine, bytes: encodeHeader({ ...header, readers: [c.agentId], version: 2 }) }
    assert.throws(() => b.store.importHeader(widened), { code: 'ERR_INVALID_HEADER', message: /signature does not verify/ })
    assert.throws(() => b.store.importHeader({ ...genuine, signature: new Uint8Array(64) }), { code: 'ERR_INVALID_HEADER', message: /signature does not verify/ })
    // c signs a header naming a as owner: a valid signature, by a device of another agent
    const usurped = signHeader({ ...header, readers: [c.agentId] }, c.signer)
    assert.throws(() => b.store.importHeader(usurped), { code: 'ERR_INVALID_HEADER', message: /not signed by a device of the owner/ })
    assert.throws(() => b.store.acl(id), { code: 'ERR_DOC_NOT_FOUND' }, 'nothing was stored')
    assert.equal(b.store.importHeader(genuine), true)
    assert.deepEqual(b.store.acl(id).readers, [])
  })

  it('never lets a header change a known document\'s owner, whatever its version', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    const b = makeNode(dir, 'b', d)
    const c = makeNode(dir, 'c', d)
    t.after(() => { a.close(); b.close(); c.close() })
    const { id } = a.store.create({ owner: a.agentId, readers: [b.agentId] })
    assert.equal(b.store.importHeader(a.store.signedHeader(id)), true)
    const header = JSON.parse(new TextDecoder().decode(a.store.signedHeader(id).bytes))
    // validly signed by a device of the agent it names as the new owner, with a higher version
    const takeover = signHeader({ ...header, owner: c.agentId, readers: [c.agentId], version: 99 }, c.signer)
    assert.throws(() => b.store.importHeader(takeover), { code: 'ERR_INVALID_HEADER', message: /another owner/ })
    assert.throws(() => b.store.importHeader(takeover, id), { code: 'ERR_INVALID_HEADER', message: /another owner/ })
    assert.equal(b.store.acl(id).owner, a.agentId)
    assert.deepEqual(b.store.acl(id).readers, [b.agentId])
    assert.equal(b.store.headerVersion(id), 1)
  })
})
