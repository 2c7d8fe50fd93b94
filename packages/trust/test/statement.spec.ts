import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import {
  createDeviceCertificate, createDeviceRevocation, createKeyRotation, createRelationship, createRevocation,
  createStorageGrant, domainTag, ed, generateKeyPair, keyIdFromPublicKey, MAX_STATEMENT_BYTES, publicKeyFromKeyId,
  verifyStatement
} from '../src/index.js'
import { signWire } from '../src/statement.js'

const T0 = 1_800_000_000_000
const HOUR = 3_600_000
const agent = generateKeyPair()
const device = generateKeyPair()

function cert (): ReturnType<typeof createDeviceCertificate> {
  return createDeviceCertificate(agent, { device: device.publicKey, issuedAt: T0, expiresAt: T0 + HOUR, name: 'laptop', labels: { region: 'eu' } })
}

function wireOf (bytes: Uint8Array): Record<string, unknown> {
  return (dagCbor.decode(bytes) as { statement: Record<string, unknown> }).statement
}

describe('key ids', () => {
  it('are did:key style multikeys that round-trip', () => {
    const id = keyIdFromPublicKey(agent.publicKey)
    assert.match(id, /^z6Mk/)
    assert.deepEqual(publicKeyFromKeyId(id), agent.publicKey)
    assert.throws(() => publicKeyFromKeyId('zzz'), { code: 'ERR_INVALID_ID' })
    assert.throws(() => publicKeyFromKeyId(id.slice(1)), { code: 'ERR_INVALID_ID' })
  })
})

describe('signed statements', () => {
  it('round-trip every type through the wire form', () => {
    const target = cert()
    const all = [
      target,
      createDeviceRevocation(agent, { device: keyIdFromPublicKey(device.publicKey), issuedAt: T0 }),
      createKeyRotation(agent, generateKeyPair(), { issuedAt: T0 }),
      createRelationship(agent, { subject: generateKeyPair().publicKey, kind: 'family', issuedAt: T0, expiresAt: T0 + HOUR }),
      createStorageGrant(agent, { grantee: generateKeyPair().publicKey, layer: 'reciprocal', quotaBytes: 20 * 2 ** 30, labels: { region: 'eu' }, issuedAt: T0, expiresAt: T0 + HOUR }),
      createRevocation(agent, { target: target.id, issuedAt: T0 })
    ]
    for (const s of all) {
      const back = verifyStatement(s.bytes, { now: T0 })
      assert.equal(back.id, s.id)
      assert.deepEqual(back.statement, s.statement)
      assert.ok(s.bytes.length < 512, `${s.statement.type} is ${s.bytes.length} bytes`)
      assert.deepEqual(Uint8Array.from(dagCbor.encode(dagCbor.decode(s.bytes))), s.bytes)
    }
  })

  it('gives the statement id as a CIDv1 dag-cbor sha2-256', () => {
    const s = cert()
    assert.match(s.id, /^bafyrei/)
    assert.equal(s.cid.code, 0x71)
  })

  // The loop skips the wrong-domain diagnosis (six more verifications per bad
  // signature, which no bit flip can satisfy) to keep the test fast; a sample
  // of flips runs through the default path below.
  it('rejects every single-bit flip of the wire bytes', () => {
    const s = createDeviceRevocation(agent, { device: device.publicKey, issuedAt: T0 })
    const codes = new Map<string, number>()
    for (let bit = 0; bit < s.bytes.length * 8; bit++) {
      const bad = Uint8Array.from(s.bytes)
      bad[bit >> 3] ^= 1 << (bit & 7)
      let code = 'ACCEPTED'
      try {
        verifyStatement(bad, { now: T0, diagnoseDomain: bit % 37 === 0 })
      } catch (err: any) {
        code = err.code
      }
      assert.notEqual(code, 'ACCEPTED', `bit ${bit} flipped was accepted`)
      assert.match(code, /^ERR_/, `bit ${bit}: ${code}`)
      codes.set(code, (codes.get(code) ?? 0) + 1)
    }
    assert.ok((codes.get('ERR_INVALID_SIGNATURE') ?? 0) > 0)
  })

  it('rejects a signature made for another domain', () => {
    const wire = wireOf(cert().bytes)
    const bytes = dagCbor.encode(wire)
    const tag = domainTag('relationship')
    const signed = new Uint8Array(tag.length + bytes.length)
    signed.set(tag)
    signed.set(bytes, tag.length)
    const forged = dagCbor.encode({ signature: ed.sign(signed, agent.secretKey), statement: wire })
    assert.throws(() => verifyStatement(forged, { now: T0 }), { code: 'ERR_WRONG_DOMAIN', name: 'WrongDomainError' })
    const untagged = dagCbor.encode({ signature: ed.sign(bytes, agent.secretKey), statement: wire })
    assert.throws(() => verifyStatement(untagged, { now: T0 }), { code: 'ERR_WRONG_DOMAIN' })
  })

  it('rejects a signature by another key', () => {
    const wire = wireOf(cert().bytes)
    const bytes = signWire(generateKeyPair().secretKey, 'device-cert', wire)
    assert.throws(() => verifyStatement(bytes, { now: T0 }), { code: 'ERR_INVALID_SIGNATURE', name: 'InvalidSignatureError' })
  })

  it('rejects expired and not-yet-valid statements', () => {
    const s = cert()
    assert.throws(() => verifyStatement(s.bytes, { now: T0 + HOUR }), { code: 'ERR_STATEMENT_EXPIRED', name: 'StatementExpiredError' })
    assert.throws(() => verifyStatement(s.bytes, { now: T0 - 10 * 60_000 }), { code: 'ERR_STATEMENT_NOT_YET_VALID' })
    verifyStatement(s.bytes, { now: T0 - 60_000 }) // inside the default 5 minute skew
    assert.throws(() => verifyStatement(s.bytes, { now: T0 - 60_000, clockSkewMs: 1000 }), { code: 'ERR_STATEMENT_NOT_YET_VALID' })
  })

  it('rejects non-canonical encodings', () => {
    const s = cert()
    // the same map with its two entries swapped: decodable, not canonical
    const sigEntry = s.bytes.subarray(1, 77)
    const stmtEntry = s.bytes.subarray(77)
    const swapped = Uint8Array.from([0xa2, ...stmtEntry, ...sigEntry])
    assert.deepEqual(dagCbor.decode(swapped), dagCbor.decode(s.bytes))
    assert.throws(() => verifyStatement(swapped, { now: T0 }), { code: 'ERR_NON_CANONICAL', name: 'NonCanonicalEncodingError' })
    // the map header written with a one-byte length: an over-long integer
    const longHeader = Uint8Array.from([0xb8, 0x02, ...s.bytes.subarray(1)])
    assert.throws(() => verifyStatement(longHeader, { now: T0 }), { code: 'ERR_NON_CANONICAL' })
  })

  it('rejects unknown major versions and unknown types', () => {
    const wire = wireOf(cert().bytes)
    const v2 = signWire(agent.secretKey, 'device-cert', { ...wire, schema_version: [2, 0] })
    assert.throws(() => verifyStatement(v2, { now: T0 }), { code: 'ERR_UNSUPPORTED_SCHEMA_VERSION', name: 'UnsupportedSchemaVersionError' })
    const unknown = signWire(agent.secretKey, 'device-cert', { ...wire, type: 'party-invite' })
    assert.throws(() => verifyStatement(unknown, { now: T0 }), { code: 'ERR_UNKNOWN_STATEMENT_TYPE' })
  })

  it('refuses unknown fields in a known minor version and keeps them in a newer one', () => {
    const wire = wireOf(cert().bytes)
    const extra = signWire(agent.secretKey, 'device-cert', { ...wire, colour: 'blue' })
    assert.throws(() => verifyStatement(extra, { now: T0 }), { code: 'ERR_MALFORMED_STATEMENT' })
    const newer = signWire(agent.secretKey, 'device-cert', { ...wire, colour: 'blue', schema_version: [1, 3] })
    const back = verifyStatement(newer, { now: T0 })
    assert.deepEqual(back.statement.schemaVersion, [1, 3])
    assert.deepEqual(back.bytes, newer)
  })

  it('refuses missing and wrongly typed fields', () => {
    const wire = wireOf(cert().bytes)
    const cases: Array<Record<string, unknown>> = [
      { ...wire, device: undefined },
      { ...wire, device: new Uint8Array(31) },
      { ...wire, issued_at: -1 },
      { ...wire, issued_at: 1.5 },
      { ...wire, expires_at: null },
      { ...wire, expires_at: T0 - 1 },
      { ...wire, nonce: new Uint8Array(4) },
      { ...wire, labels: { region: 7 } },
      { ...wire, labels: {} },
      { ...wire, name: '' },
      { ...wire, schema_version: '1.0' },
      { ...wire, type: 7 }
    ]
    for (const c of cases) {
      for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k]
      assert.throws(() => verifyStatement(signWire(agent.secretKey, 'device-cert', c), { now: T0 }), { code: 'ERR_MALFORMED_STATEMENT' }, JSON.stringify(Object.keys(c)))
    }
    assert.throws(() => verifyStatement(dagCbor.encode({ statement: wire }), { now: T0 }), { code: 'ERR_MALFORMED_STATEMENT' })
    assert.throws(() => verifyStatement(Uint8Array.from([0x1c]), { now: T0 }), { code: 'ERR_MALFORMED_STATEMENT' })
    assert.throws(() => verifyStatement(new Uint8Array(0), { now: T0 }), { code: 'ERR_MALFORMED_STATEMENT' })
  })

  it('refuses statements over the size cap', () => {
    assert.throws(() => verifyStatement(new Uint8Array(MAX_STATEMENT_BYTES + 1), { now: T0 }), { code: 'ERR_STATEMENT_TOO_LARGE', name: 'StatementTooLargeError' })
    const wire = { ...wireOf(cert().bytes), schema_version: [1, 1], padding: new Uint8Array(MAX_STATEMENT_BYTES) }
    assert.throws(() => verifyStatement(signWire(agent.secretKey, 'device-cert', wire), { now: T0 }), { code: 'ERR_STATEMENT_TOO_LARGE' })
  })

  it('checks the new key\'s proof in a rotation', () => {
    const rotation = createKeyRotation(agent, generateKeyPair(), { issuedAt: T0 })
    const wire = wireOf(rotation.bytes)
    const proof = Uint8Array.from(wire.proof as Uint8Array)
    proof[3] ^= 0x10
    assert.throws(() => verifyStatement(signWire(agent.secretKey, 'key-rotation', { ...wire, proof }), { now: T0 }), { code: 'ERR_INVALID_SIGNATURE' })
  })

  it('refuses to build what it would refuse to read', () => {
    assert.throws(() => createStorageGrant(agent, { grantee: agent.publicKey, layer: 'gift', quotaBytes: 1, expiresAt: T0 + 1, issuedAt: T0 }), { code: 'ERR_MALFORMED_STATEMENT' })
    assert.throws(() => createStorageGrant(agent, { grantee: device.publicKey, layer: 'cache' as any, quotaBytes: 1, expiresAt: T0 + 1, issuedAt: T0 }), { code: 'ERR_MALFORMED_STATEMENT' })
    assert.throws(() => createRelationship(agent, { subject: device.publicKey, kind: 'friend', expiresAt: T0, issuedAt: T0 }), { code: 'ERR_MALFORMED_STATEMENT' })
  })
})
