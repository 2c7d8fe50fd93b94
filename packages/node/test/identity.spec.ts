import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKeyPair } from '@hearth/trust'
import { libp2pPrivateKey, peerIdOfKey } from '../src/identity.js'

describe('device identity', () => {
  it('gives the PeerId and key libp2p would derive from the same seed', async () => {
    for (let i = 0; i < 20; i++) {
      const pair = generateKeyPair()
      const reference = await generateKeyPairFromSeed('Ed25519', pair.secretKey)
      const ours = libp2pPrivateKey(pair)
      assert.ok(ours.equals(reference))
      assert.deepEqual(ours.publicKey.raw, reference.publicKey.raw)
      assert.ok(peerIdOfKey(pair).equals(peerIdFromPrivateKey(reference)))
      const msg = new TextEncoder().encode(`message ${i}`)
      assert.equal(await reference.publicKey.verify(msg, await ours.sign(msg)), true)
    }
  })
})
