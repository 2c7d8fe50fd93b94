import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as A from '@automerge/automerge'
import { generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import { SyncError, createMemoryChannelPair, decodeMessage, encodeMessage, generateDocumentId } from '../src/index.js'
import type { ChangeSignature, DocumentId, WireMessage } from '../src/index.js'
import { Directory, makeNode, tempDir } from './helpers.js'

const DECODE_CODES = new Set(['ERR_MALFORMED_MESSAGE', 'ERR_MESSAGE_TOO_LARGE'])
const devices = Array.from({ length: 3 }, () => keyIdFromPublicKey(generateKeyPair().publicKey))

const docId = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(() => generateDocumentId().id)
const sig: fc.Arbitrary<ChangeSignature> = fc.record({
  hash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(b => Buffer.from(b).toString('hex')),
  kind: fc.constantFrom('device' as const, 'custodial' as const),
  device: fc.constantFrom(...devices),
  signature: fc.uint8Array({ minLength: 64, maxLength: 64 })
})
const message: fc.Arbitrary<WireMessage> = fc.oneof(
  fc.record({ type: fc.constantFrom('subscribe' as const, 'unsubscribe' as const), docs: fc.array(docId, { maxLength: 5 }) }),
  fc.record({
    type: fc.constant('sync' as const),
    doc: docId,
    header: fc.option(fc.record({ bytes: fc.uint8Array({ maxLength: 40 }), device: fc.constantFrom(...devices), signature: fc.uint8Array({ minLength: 64, maxLength: 64 }) }), { nil: undefined }),
    data: fc.uint8Array({ maxLength: 200 }),
    signatures: fc.array(sig, { maxLength: 4 })
  }).map(m => { if (m.header === undefined) delete (m as any).header; return m }),
  fc.record({ type: fc.constant('doc-error' as const), doc: docId, code: fc.constantFrom('ERR_ACCESS_DENIED', 'ERR_DOC_NOT_FOUND', 'X_1') }),
  fc.record({ type: fc.constant('want' as const), docs: fc.array(docId, { maxLength: 5 }) }),
  fc.record({
    type: fc.constant('snapshot' as const),
    doc: docId,
    header: fc.record({ bytes: fc.uint8Array({ maxLength: 40 }), device: fc.constantFrom(...devices), signature: fc.uint8Array({ minLength: 64, maxLength: 64 }) }),
    data: fc.uint8Array({ maxLength: 200 }),
    signatures: fc.array(sig, { maxLength: 4 })
  }),
  fc.record({ type: fc.constant('changes' as const), doc: docId, changes: fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 3 }), signatures: fc.array(sig, { maxLength: 3 }) })
)

function decodesOrRefuses (bytes: Uint8Array, max?: number): void {
  try {
    const m = decodeMessage(bytes, max)
    // whatever decodes re-encodes to the same bytes: there is one encoding per message
    assert.deepEqual(encodeMessage(m), Uint8Array.from(bytes))
  } catch (err: any) {
    assert.ok(err instanceof SyncError && DECODE_CODES.has(err.code), `unexpected ${err?.name}: ${err?.message}`)
  }
}

describe('wire codec', () => {
  it('round-trips every message', () => {
    fc.assert(fc.property(message, m => {
      const back = decodeMessage(encodeMessage(m))
      assert.deepEqual(JSON.parse(JSON.stringify(back, bin)), JSON.parse(JSON.stringify(m, bin)))
    }), { numRuns: 500 })
  })

  it('refuses random bytes with a stable code and nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), b => { decodesOrRefuses(b) }), { numRuns: 3000 })
    // biased towards the right version and type bytes
    fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.uint8Array({ maxLength: 300 }), (type, rest) => {
      decodesOrRefuses(Uint8Array.of(1, type, ...rest))
    }), { numRuns: 3000 })
  })

  it('refuses mutated valid messages with a stable code', () => {
    fc.assert(fc.property(message, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (m, flips, cut) => {
      const bytes = encodeMessage(m)
      const mutated = Uint8Array.from(bytes)
      for (const [i, v] of flips) mutated[i % mutated.length] = v
      decodesOrRefuses(mutated)
      decodesOrRefuses(bytes.subarray(0, cut % (bytes.length + 1)))
      decodesOrRefuses(Uint8Array.of(...bytes, 0))
    }), { numRuns: 2000 })
  })

  it('refuses a signature table that is not the one encoding (devices out of first-use order, repeated or unused)', () => {
    const sig = (device: string): ChangeSignature => ({ hash: '11'.repeat(32), kind: 'device', device, signature: new Uint8Array(64).fill(7) })
    const m: WireMessage = { type: 'changes', doc: generateDocumentId().id, changes: [Uint8Array.of(1, 2, 3)], signatures: [sig(devices[0]), sig(devices[1]), sig(devices[0])] }
    const bytes = encodeMessage(m)
    assert.deepEqual(encodeMessage(decodeMessage(bytes)), bytes)
    // the signatures close the message, 98 bytes each: hash(32) | kind | device index | signature(64)
    const firstIndex = bytes.length - 3 * 98 + 33
    assert.equal(bytes[firstIndex], 0)
    const swapped = Uint8Array.from(bytes)
    swapped[firstIndex] = 1 // device 1 used before device 0: re-encoding would reorder the table
    assert.throws(() => decodeMessage(swapped), { code: 'ERR_MALFORMED_MESSAGE', message: /first-use order/ })
    const unused = Uint8Array.from(bytes)
    unused[firstIndex + 98] = 0 // device 1 then signs nothing
    assert.throws(() => decodeMessage(unused), { code: 'ERR_MALFORMED_MESSAGE', message: /signs nothing/ })
  })

  it('refuses messages over the size cap before decoding', () => {
    assert.throws(() => decodeMessage(new Uint8Array(1025), 1024), { code: 'ERR_MESSAGE_TOO_LARGE' })
    assert.throws(() => decodeMessage(Uint8Array.of(2, 1, 0)), { code: 'ERR_MALFORMED_MESSAGE' })
    assert.throws(() => decodeMessage('hello' as any), { code: 'ERR_MALFORMED_MESSAGE' })
  })
})

describe('incoming Automerge data', () => {
  it('mutated sync messages and changes are refused whole or applied whole, never crash the store', t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    const b = makeNode(dir, 'b', d)
    t.after(() => { a.close(); b.close() })
    const { id } = a.store.create({ owner: a.agentId, writers: [b.agentId], content: { text: 'hello', n: [1, 2, 3] } })
    for (let i = 0; i < 5; i++) a.store.change(id, (x: any) => { x.n.push(i) })
    b.store.importHeader(a.store.signedHeader(id))
    // run the protocol between a's document and an empty one until a sends its data: the whole document as one chunk
    const aDoc = A.load(a.store.save(id))
    let bDoc = A.init()
    let sa = A.initSyncState()
    let sb = A.initSyncState()
    let answer: Uint8Array | null = null
    for (let round = 0; round < 5 && answer == null; round++) {
      let m: Uint8Array | null
      ;[sb, m] = A.generateSyncMessage(bDoc, sb)
      if (m != null) [, sa] = A.receiveSyncMessage(aDoc, sa, m)
      ;[sa, m] = A.generateSyncMessage(aDoc, sa)
      if (m != null && A.decodeSyncMessage(m).changes.length > 0) answer = m
      else if (m != null) [bDoc, sb] = A.receiveSyncMessage(bDoc, sb, m)
    }
    assert.ok(answer != null)
    const signatures = a.store.signaturesForSyncMessage(id, answer as Uint8Array)
    assert.equal(signatures.length, 6)
    const changes = A.getAllChanges(a.store.doc(id))
    let refused = 0
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), fc.boolean(), (flips, useChange) => {
      const src = useChange ? changes[flips[0][0] % changes.length] : answer as Uint8Array
      const mutated = Uint8Array.from(src)
      for (const [i, v] of flips) mutated[i % mutated.length] = v
      const before = b.store.stats()
      try {
        if (useChange) b.store.applyChanges(id, [mutated], { signatures })
        else b.store.receiveSyncMessage(id, A.initSyncState(), mutated, { signatures })
      } catch (err: any) {
        assert.ok(err instanceof SyncError, `unexpected ${err?.name}: ${err?.message}`)
        refused++
        const after = b.store.stats()
        assert.equal(after.signatures, before.signatures, 'nothing stored from a refused message')
      }
    }), { numRuns: 300 })
    t.diagnostic(`refused ${refused} of 300 mutations`)
    // the store still works and still accepts the genuine message
    b.store.receiveSyncMessage(id, A.initSyncState(), answer as Uint8Array, { signatures })
    assert.deepEqual(b.store.view(id).value, a.store.view(id).value)
  })

  it('a session survives garbage and keeps syncing', async t => {
    const dir = tempDir(t)
    const d = new Directory()
    const a = makeNode(dir, 'a', d)
    t.after(() => a.close())
    const [mine, theirs] = createMemoryChannelPair()
    const s = a.engine.connect(devices[0], theirs)
    const frames = fc.sample(fc.uint8Array({ maxLength: 100 }), 200)
    for (const f of frames) await mine.send(f)
    assert.equal(s.closed, false)
    assert.ok(s.stats().rejectedMessages >= 150)
    const { id } = a.store.create({ owner: a.agentId, public: true })
    const got: WireMessage[] = []
    mine.onMessage(m => got.push(decodeMessage(m)))
    await mine.send(encodeMessage({ type: 'subscribe', docs: [id as DocumentId] }))
    await s.idle()
    assert.ok(got.some(m => m.type === 'sync' && m.doc === id && m.header != null))
  })
})

function bin (_k: string, v: unknown): unknown {
  return v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v
}
