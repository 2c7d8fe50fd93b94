import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createDeviceCertificate, createTrustGraph, generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import type { KeyPair, TrustGraph } from '@hearth/trust'
import { signPinSet, verifyPinSet } from '../src/replication/pin-sets.js'
import type { PinSet } from '../src/replication/pin-sets.js'
import { tempDir } from './helpers.js'

const YEAR = 365 * 86_400_000
const CID = 'bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4'

describe('pin set signatures', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let graph: TrustGraph
  const agent = generateKeyPair()
  const device = generateKeyPair()
  const otherAgent = generateKeyPair()
  const otherDevice = generateKeyPair()

  const setOf = (key: KeyPair, agentKey: KeyPair, roots = [{ cid: CID, layer: 'reciprocal', size: 1024 }]): PinSet => ({
    agent: keyIdFromPublicKey(agentKey.publicKey), device: keyIdFromPublicKey(key.publicKey), seq: Date.now(), roots, held: [], failed: [], declines: [], refused: []
  })

  before(async () => {
    dir = await tempDir()
    graph = createTrustGraph({ path: `${dir.path}/trust.sqlite` })
    graph.add(createDeviceCertificate(agent, { device: device.publicKey, expiresAt: Date.now() + YEAR }).bytes)
    graph.add(createDeviceCertificate(otherAgent, { device: otherDevice.publicKey, expiresAt: Date.now() + YEAR }).bytes)
  })
  after(async () => { graph.close(); await dir.remove() })

  it('accepts a set its certified device signed', () => {
    const set = verifyPinSet(signPinSet(device, setOf(device, agent)), graph)
    assert.equal(set.agent, keyIdFromPublicKey(agent.publicKey))
    assert.deepEqual(set.roots, [{ cid: CID, layer: 'reciprocal', size: 1024 }])
  })

  it('refuses a set whose record was changed after signing', () => {
    const { signature } = dagCbor.decode<{ signature: Uint8Array }>(signPinSet(device, setOf(device, agent)))
    // a well-formed record, so only the signature stands in the way: the roots swapped for others
    const forged = dagCbor.decode<{ record: Uint8Array }>(signPinSet(device, setOf(device, agent, [{ cid: CID, layer: 'sovereign', size: 1 }]))).record
    assert.throws(() => verifyPinSet(dagCbor.encode({ record: forged, signature }), graph), { code: 'ERR_INVALID_PIN_SET', message: 'bad signature' })
    assert.throws(() => verifyPinSet(dagCbor.encode({ record: forged, signature: new Uint8Array(64) }), graph), { code: 'ERR_INVALID_PIN_SET', message: 'bad signature' })
  })

  it('refuses a set signed by another key than the device it names', () => {
    const claimed = setOf(device, agent)
    assert.throws(() => verifyPinSet(signPinSet(otherDevice, claimed), graph), { code: 'ERR_INVALID_PIN_SET', message: 'bad signature' })
  })

  it('refuses a set a device signed for an agent that did not certify it', () => {
    // correctly signed by otherDevice, which is certified for otherAgent only
    assert.throws(() => verifyPinSet(signPinSet(otherDevice, setOf(otherDevice, agent)), graph), { code: 'ERR_INVALID_PIN_SET', message: /not certified/ })
  })
})
