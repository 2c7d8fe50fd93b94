import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createDeviceCertificate, createDeviceRevocation, createTrustGraph, generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import { createDeviceSigner, createDocumentStore, createEd25519Verifier, createMemoryChannelPair, createSyncEngine } from '../src/index.js'
import { sameHeads, tempDir, waitFor } from './helpers.js'

// The daemon's wiring: the verifier asks the trust graph who may write.
describe('with the trust graph as verifier', () => {
  it('accepts changes from certified devices of writers, and refuses them once the device is revoked', async t => {
    const dir = tempDir(t)
    const alice = generateKeyPair()
    const bob = generateKeyPair()
    const aliceId = keyIdFromPublicKey(alice.publicKey)
    const bobId = keyIdFromPublicKey(bob.publicKey)
    const YEAR = 365 * 86_400_000
    const nodes = ['a', 'b'].map((name, i) => {
      const device = generateKeyPair()
      const graph = createTrustGraph({ path: join(dir, `${name}-trust.sqlite`) })
      const verifier = createEd25519Verifier({ mayWrite: (d, acl) => graph.mayWrite(d, acl) })
      const store = createDocumentStore({ path: join(dir, `${name}.sqlite`) }, { signer: createDeviceSigner(device), verifier })
      const engine = createSyncEngine({}, { store, verifier })
      return { name, device, deviceId: keyIdFromPublicKey(device.publicKey), graph, store, engine, agent: i === 0 ? alice : bob }
    })
    t.after(() => { for (const n of nodes) { n.engine.stop(); n.store.close(); n.graph.close() } })
    const certs = nodes.map(n => createDeviceCertificate(n.agent, { device: n.device.publicKey, expiresAt: Date.now() + YEAR }).bytes)
    for (const n of nodes) for (const c of certs) n.graph.add(c)
    const [a, b] = nodes

    const { id } = a.store.create({ owner: aliceId, writers: [bobId], content: { n: 0 } })
    const [ca, cb] = createMemoryChannelPair()
    a.engine.connect(b.deviceId, ca)
    const sb = b.engine.connect(a.deviceId, cb)
    sb.subscribe([id])
    await waitFor(() => b.store.has(id) && sameHeads(a.store.heads(id), b.store.heads(id)), 5000, 'sync')
    b.store.change(id, (x: any) => { x.n = 1 })
    await waitFor(() => (a.store.view(id).value as any).n === 1, 5000, 'bob\'s change at alice')

    // bob revokes his device at alice's node only: its next change is refused there
    a.graph.add(createDeviceRevocation(bob, { device: b.device.publicKey }).bytes)
    b.store.change(id, (x: any) => { x.n = 2 })
    await waitFor(() => a.store.stats().rejectedMessages > 0, 5000, 'refusal')
    assert.equal((a.store.view(id).value as any).n, 1)
    await waitFor(() => sb.stats().peerErrors.ERR_UNAUTHORIZED_WRITER === 1, 5000, 'doc-error at bob')
  })
})
