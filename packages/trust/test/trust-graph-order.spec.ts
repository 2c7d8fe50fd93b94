import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createDeviceCertificate, createDeviceRevocation, createKeyRotation, createRelationship, createRevocation,
  createStorageGrant, createTrustGraph,
  generateKeyPair, keyIdFromPublicKey
} from '../src/index.js'
import type { KeyPair, SignedStatement, TrustGraph } from '../src/index.js'

const T0 = 1_800_000_000_000
const DAY = 86_400_000
const id = (k: KeyPair): string => keyIdFromPublicKey(k.publicKey)

// Two nodes that hold the same statements must answer the same, whatever
// order the statements reached them in and whichever of them add() refused
// on the way (a refusal is only ever for a statement that could not count).
describe('trust graph convergence', () => {
  let dir: string
  const keys = Array.from({ length: 4 }, () => generateKeyPair())
  const devices = Array.from({ length: 3 }, () => generateKeyPair())
  const [k0, k1, k2, b0] = keys
  const pool: SignedStatement[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-trust-order-'))
    // One agent chain with alternatives and a fork, a second agent, and
    // certificates and revocations by every key at times around the rotations.
    pool.push(
      createKeyRotation(k0, k1, { issuedAt: T0 + 100 }),
      createKeyRotation(k0, k1, { issuedAt: T0 + 200 }),
      createKeyRotation(k1, k2, { issuedAt: T0 + 150 }),
      createKeyRotation(k1, k2, { issuedAt: T0 + 300 }),
      createKeyRotation(k0, k2, { issuedAt: T0 + 250 })
    )
    for (const issuer of keys) {
      for (const [i, device] of devices.entries()) {
        for (const at of [50, 120, 180, 260, 350].filter((_, j) => (j + i) % 2 === 0)) {
          const cert = createDeviceCertificate(issuer, { device: device.publicKey, issuedAt: T0 + at, expiresAt: T0 + DAY })
          pool.push(cert)
          if (at === 180) pool.push(createRevocation(issuer, { target: cert.id, issuedAt: T0 + at + 5 }))
        }
      }
      pool.push(createDeviceRevocation(issuer, { device: devices[0].publicKey, issuedAt: T0 + 130 }))
    }
    // relationships and grants whose agents depend on the chain, and a grant revoked by a later key
    const grant = createStorageGrant(k0, { grantee: b0.publicKey, layer: 'reciprocal', quotaBytes: 100, issuedAt: T0 + 90, expiresAt: T0 + DAY })
    pool.push(
      grant,
      createRevocation(k2, { target: grant.id, issuedAt: T0 + 400 }),
      createStorageGrant(k1, { grantee: b0.publicKey, layer: 'gift', quotaBytes: 50, issuedAt: T0 + 170, expiresAt: T0 + DAY }),
      createRelationship(k1, { subject: b0.publicKey, kind: 'family', issuedAt: T0 + 120, expiresAt: T0 + DAY }),
      createRelationship(k2, { subject: b0.publicKey, kind: 'friend', issuedAt: T0 + 320, expiresAt: T0 + DAY }),
      createRelationship(b0, { subject: k2.publicKey, kind: 'family', issuedAt: T0 + 50, expiresAt: T0 + DAY })
    )
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  const answers = (g: TrustGraph): unknown => ({
    keys: keys.map(k => [g.resolveAgent(id(k)), g.currentKey(id(k))]),
    devices: devices.map(d => g.agentOfDevice(id(d)) ?? null),
    devicesOf: keys.map(k => g.devicesOf(id(k)).map(d => d.certificate)),
    relationships: g.relationships(id(b0)),
    policy: keys.map(k => g.replicationPolicy({ agentId: id(k) })),
    relayed: g.statements({ limit: 10_000 }).statements.map(s => s.id).sort()
  })

  let run = 0
  const withGraph = <T>(fn: (g: TrustGraph) => T): T => {
    const g = createTrustGraph({ path: join(dir, `g${run++}.sqlite`) }, { clock: { now: () => T0 + 1000 } })
    try { return fn(g) } finally { g.close() }
  }
  const feed = (g: TrustGraph, statements: SignedStatement[]): void => {
    for (const s of statements) {
      try { g.add(s.bytes) } catch (err: any) { assert.match(err.code, /^ERR_/) }
    }
  }

  it('answers the same for any arrival order of any subset', () => {
    fc.assert(fc.property(fc.shuffledSubarray(pool.map((_, i) => i), { minLength: 1 }), fc.func(fc.integer()), (order, key) => {
      const statements = order.map(i => pool[i])
      const shuffled = [...statements].sort((a, b) => key(a.id) - key(b.id) || (a.id < b.id ? -1 : 1))
      const first = withGraph(g => { feed(g, statements); return answers(g) })
      const second = withGraph(g => { feed(g, shuffled); return answers(g) })
      assert.deepEqual(second, first)
    }), { numRuns: Number(process.env.HEARTH_FC_RUNS ?? 40) })
  })
})
