import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createDeviceCertificate, createRelationship, createStorageGrant, generateKeyPair, keyIdFromPublicKey,
  keyPairFromSecret, publicKeyFromKeyId, verifyStatement
} from '../src/index.js'

const T0 = 1_800_000_000_000
const agent = generateKeyPair()
const arbKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(seed => keyPairFromSecret(seed).publicKey)
const arbTimes = fc.tuple(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 1, max: 2 ** 40 }))
const arbLabels = fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 64 }), fc.string({ minLength: 1, maxLength: 64 }), { minKeys: 1, maxKeys: 16 }), { nil: undefined })
const arbNonce = fc.uint8Array({ minLength: 16, maxLength: 16 })

describe('statement properties', () => {
  it('key ids round-trip any public key', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), key => {
      assert.deepEqual(publicKeyFromKeyId(keyIdFromPublicKey(key)), key)
    }))
  })

  it('device certificates round-trip', () => {
    fc.assert(fc.property(arbKey, arbTimes, arbLabels, fc.option(fc.string({ minLength: 1, maxLength: 256 }), { nil: undefined }), arbNonce,
      (device, [issuedAt, ttl], labels, name, nonce) => {
        const s = createDeviceCertificate(agent, { device, issuedAt, expiresAt: issuedAt + ttl, labels, name, nonce })
        const back = verifyStatement(s.bytes, { now: issuedAt })
        assert.equal(back.id, s.id)
        assert.deepEqual(back.statement, s.statement)
        assert.deepEqual(back.bytes, s.bytes)
      }), { numRuns: 60 })
  })

  it('grants and relationships round-trip', () => {
    fc.assert(fc.property(arbKey, arbTimes, arbLabels, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.constantFrom('sovereign', 'reciprocal', 'invested', 'gift' as const), fc.constantFrom('family', 'friend', 'community' as const),
      (other, [issuedAt, ttl], labels, quotaBytes, layer, kind) => {
        const g = createStorageGrant(agent, { grantee: other, layer, quotaBytes, labels, issuedAt, expiresAt: issuedAt + ttl })
        assert.deepEqual(verifyStatement(g.bytes, { now: issuedAt }).statement, g.statement)
        const r = createRelationship(agent, { subject: other, kind, issuedAt, expiresAt: issuedAt + ttl })
        assert.deepEqual(verifyStatement(r.bytes, { now: issuedAt }).statement, r.statement)
      }), { numRuns: 60 })
  })

  it('never accepts random bytes and never throws anything but a coded error', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), bytes => {
      assert.throws(() => verifyStatement(bytes, { now: T0 }), (err: any) => typeof err.code === 'string' && err.code.startsWith('ERR_'))
    }), { numRuns: 500 })
  })

  it('never accepts a mutated statement', () => {
    const s = createStorageGrant(agent, { grantee: generateKeyPair().publicKey, layer: 'gift', quotaBytes: 10, issuedAt: T0, expiresAt: T0 + 1000 })
    fc.assert(fc.property(fc.integer({ min: 0, max: s.bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
      const bad = Uint8Array.from(s.bytes)
      bad[at] ^= xor
      assert.throws(() => verifyStatement(bad, { now: T0 }), (err: any) => typeof err.code === 'string' && err.code.startsWith('ERR_'))
    }), { numRuns: 100 })
  })
})
