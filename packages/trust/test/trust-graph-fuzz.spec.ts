import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createDeviceCertificate, createRelationship, createStorageGrant, createTrustGraph, generateKeyPair, TrustError
} from '../src/index.js'
import type { TrustGraph } from '../src/index.js'

const T0 = 1_800_000_000_000
const DAY = 86_400_000

// Bad input from a peer or a client: a coded TrustError, and nothing stored.
describe('trust graph with hostile input', () => {
  let dir: string
  let graph: TrustGraph
  const agent = generateKeyPair()
  const seeds = [
    createDeviceCertificate(agent, { device: generateKeyPair().publicKey, name: 'nas', labels: { rack: 'r1' }, issuedAt: T0, expiresAt: T0 + DAY }),
    createRelationship(agent, { subject: generateKeyPair().publicKey, kind: 'friend', issuedAt: T0, expiresAt: T0 + DAY }),
    createStorageGrant(agent, { grantee: generateKeyPair().publicKey, layer: 'gift', quotaBytes: 1024, issuedAt: T0, expiresAt: T0 + DAY })
  ]

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-trust-fuzz-'))
    graph = createTrustGraph({ path: join(dir, 'trust.sqlite'), diagnoseDomain: false }, { clock: { now: () => T0 } })
  })
  after(async () => {
    graph.close()
    await rm(dir, { recursive: true, force: true })
  })

  const count = (): number => graph.graphSnapshot({ limit: 1 }).counts.statements

  it('refuses mutated, truncated and extended statements without storing anything', () => {
    fc.assert(fc.property(
      fc.constantFrom(...seeds),
      fc.oneof(
        fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
        fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
        fc.record({ kind: fc.constant('append' as const), tail: fc.uint8Array({ minLength: 1, maxLength: 16 }) })
      ),
      (seed, change) => {
        let bad: Uint8Array
        if (change.kind === 'flip') {
          bad = Uint8Array.from(seed.bytes)
          bad[change.at % bad.length] ^= change.xor
        } else if (change.kind === 'cut') {
          bad = seed.bytes.subarray(0, change.at % seed.bytes.length)
        } else {
          bad = Uint8Array.from([...seed.bytes, ...change.tail])
        }
        const before = count()
        assert.throws(() => graph.add(bad), (err: unknown) => err instanceof TrustError && /^ERR_/.test(err.code))
        assert.equal(count(), before)
      }), { numRuns: 150 })
  })

  it('bounds the snapshot', () => {
    for (let i = 0; i < 5; i++) {
      graph.add(createRelationship(agent, { subject: generateKeyPair().publicKey, kind: 'community', issuedAt: T0, expiresAt: T0 + DAY }).bytes)
    }
    const small = graph.graphSnapshot({ limit: 2 })
    assert.equal(small.truncated, true)
    assert.equal(small.relationships.length, 2)
    const full = graph.graphSnapshot()
    assert.equal(full.truncated, false)
    assert.equal(full.relationships.length, 5)
    assert.equal(full.counts.statements, 5)
  })
})
