import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  createDeviceCertificate, createDeviceRevocation, createKeyRotation, createRelationship, createRevocation,
  createStorageGrant, createTrustGraph, generateKeyPair, keyIdFromPublicKey
} from '../src/index.js'
import type { KeyPair, TrustGraph } from '../src/index.js'

const T0 = 1_800_000_000_000
const DAY = 86_400_000
const GiB = 2 ** 30
const id = (k: KeyPair): string => keyIdFromPublicKey(k.publicKey)

describe('trust graph', () => {
  let dir: string
  let graph: TrustGraph
  const clock = { t: T0, now () { return this.t } }
  const open = (): TrustGraph => createTrustGraph({ path: join(dir, 'trust.sqlite') }, { clock })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-trust-'))
    clock.t = T0
    graph = open()
  })
  afterEach(async () => {
    graph.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('knows the agent of a certified device and who may write', () => {
    const alice = generateKeyPair()
    const bob = generateKeyPair()
    const laptop = generateKeyPair()
    const cert = createDeviceCertificate(alice, { device: laptop.publicKey, name: 'laptop', labels: { region: 'eu' }, issuedAt: T0, expiresAt: T0 + DAY })
    const added = graph.add(cert.bytes)
    assert.equal(added.added, true)
    assert.equal(added.id, cert.id)
    const info = graph.agentOfDevice(id(laptop))
    assert.equal(info?.agent, id(alice))
    assert.equal(info?.name, 'laptop')
    assert.deepEqual(info?.labels, { region: 'eu' })
    assert.equal(graph.requireDevice(id(laptop)).certificate, cert.id)
    assert.deepEqual(graph.devicesOf(id(alice)).map(d => d.device), [id(laptop)])
    assert.equal(graph.mayWrite(id(laptop), { owner: id(alice) }), true)
    assert.equal(graph.mayWrite(id(laptop), { owner: id(bob), writers: [id(alice)] }), true)
    assert.equal(graph.mayWrite(id(laptop), { owner: id(bob) }), false)
    assert.equal(graph.mayWrite(id(generateKeyPair()), { owner: id(alice) }), false)
    assert.throws(() => graph.requireDevice(id(bob)), { code: 'ERR_DEVICE_NOT_CERTIFIED' })
    assert.throws(() => graph.agentOfDevice('laptop'), { code: 'ERR_INVALID_ID', name: 'InvalidIdError' })
    assert.throws(() => graph.relationships(''), { code: 'ERR_INVALID_ID' })
    assert.equal(graph.mayWrite('laptop', { owner: id(alice) }), false)
  })

  it('is idempotent and stores nothing on error', () => {
    const alice = generateKeyPair()
    const cert = createDeviceCertificate(alice, { device: generateKeyPair().publicKey, issuedAt: T0, expiresAt: T0 + DAY })
    assert.equal(graph.add(cert.bytes).added, true)
    assert.equal(graph.add(cert.bytes).added, false)
    assert.equal(graph.statements().statements.length, 1)
    const bad = Uint8Array.from(cert.bytes)
    bad[bad.length - 1] ^= 1
    assert.throws(() => graph.add(bad), { code: 'ERR_INVALID_SIGNATURE' })
    const expired = createDeviceCertificate(alice, { device: generateKeyPair().publicKey, issuedAt: T0 - 2 * DAY, expiresAt: T0 - DAY })
    assert.throws(() => graph.add(expired.bytes), { code: 'ERR_STATEMENT_EXPIRED' })
    assert.equal(graph.has(expired.id), false)
    assert.throws(() => graph.add(new Uint8Array(20_000)), { code: 'ERR_STATEMENT_TOO_LARGE' })
    assert.equal(graph.statements().statements.length, 1)
  })

  it('honours expiry at query time', () => {
    const alice = generateKeyPair()
    const phone = generateKeyPair()
    graph.add(createDeviceCertificate(alice, { device: phone.publicKey, issuedAt: T0, expiresAt: T0 + DAY }).bytes)
    assert.equal(graph.mayWrite(id(phone), { owner: id(alice) }), true)
    clock.t = T0 + DAY
    assert.equal(graph.agentOfDevice(id(phone)), undefined)
    assert.equal(graph.mayWrite(id(phone), { owner: id(alice) }), false)
    assert.throws(() => graph.requireDevice(id(phone)), { code: 'ERR_STATEMENT_EXPIRED' })
    assert.equal(graph.statements().statements.length, 0)
    // an expired statement can go: offered again it would be refused
    const revocation = createDeviceRevocation(alice, { device: phone.publicKey, issuedAt: T0 + DAY })
    graph.add(revocation.bytes)
    assert.equal(graph.prune(), 1)
    assert.equal(graph.has(revocation.id), true)
    assert.equal(graph.prune(), 0)
  })

  it('revokes devices, and refuses their older certificates afterwards', () => {
    const alice = generateKeyPair()
    const phone = generateKeyPair()
    const cert = createDeviceCertificate(alice, { device: phone.publicKey, issuedAt: T0, expiresAt: T0 + DAY })
    const older = createDeviceCertificate(alice, { device: phone.publicKey, issuedAt: T0 - 1000, expiresAt: T0 + DAY })
    graph.add(cert.bytes)
    clock.t = T0 + 10
    graph.add(createDeviceRevocation(alice, { device: phone.publicKey, issuedAt: T0 + 10 }).bytes)
    assert.equal(graph.agentOfDevice(id(phone)), undefined)
    assert.equal(graph.mayWrite(id(phone), { owner: id(alice) }), false)
    assert.throws(() => graph.requireDevice(id(phone)), { code: 'ERR_KEY_REVOKED', name: 'KeyRevokedError' })
    // an older certificate arriving later is kept but does not count
    const late = graph.add(older.bytes)
    assert.deepEqual([late.added, late.valid], [true, false])
    assert.equal(graph.agentOfDevice(id(phone)), undefined)
    // another agent's revocation means nothing for alice's certificate
    const mallory = generateKeyPair()
    const laptop = generateKeyPair()
    graph.add(createDeviceCertificate(alice, { device: laptop.publicKey, issuedAt: T0, expiresAt: T0 + DAY }).bytes)
    graph.add(createDeviceRevocation(mallory, { device: laptop.publicKey, issuedAt: T0 + 10 }).bytes)
    assert.equal(graph.agentOfDevice(id(laptop))?.agent, id(alice))
    // re-certifying after the revocation works
    clock.t = T0 + 20
    graph.add(createDeviceCertificate(alice, { device: phone.publicKey, issuedAt: T0 + 20, expiresAt: T0 + DAY }).bytes)
    assert.equal(graph.agentOfDevice(id(phone))?.agent, id(alice))
  })

  it('revokes a certificate by id', () => {
    const alice = generateKeyPair()
    const phone = generateKeyPair()
    const cert = createDeviceCertificate(alice, { device: phone.publicKey, issuedAt: T0, expiresAt: T0 + DAY })
    graph.add(cert.bytes)
    graph.add(createRevocation(alice, { target: cert.id, issuedAt: T0 }).bytes)
    assert.equal(graph.agentOfDevice(id(phone)), undefined)
    assert.throws(() => graph.requireDevice(id(phone)), { code: 'ERR_KEY_REVOKED' })
  })

  it('follows key rotations and rejects rotated-away keys', () => {
    const a0 = generateKeyPair()
    const a1 = generateKeyPair()
    const early = generateKeyPair()
    const late = generateKeyPair()
    const agent = id(a0)
    graph.add(createDeviceCertificate(a0, { device: early.publicKey, issuedAt: T0, expiresAt: T0 + DAY }).bytes)
    clock.t = T0 + 100
    graph.add(createKeyRotation(a0, a1, { issuedAt: T0 + 100 }).bytes)
    assert.equal(graph.resolveAgent(id(a1)), agent)
    assert.equal(graph.currentKey(agent), id(a1))
    assert.deepEqual(graph.agent(id(a1)).keys.map(k => k.key), [id(a0), id(a1)])
    // the old key's statements from before the rotation stand
    assert.equal(graph.agentOfDevice(id(early))?.agent, agent)
    // the new key speaks for the same agent
    graph.add(createDeviceCertificate(a1, { device: late.publicKey, issuedAt: T0 + 150, expiresAt: T0 + DAY }).bytes)
    assert.equal(graph.agentOfDevice(id(late))?.agent, agent)
    assert.equal(graph.mayWrite(id(late), { owner: agent }), true)
    // the old key after the rotation, the new key before it
    const stale = createDeviceCertificate(a0, { device: generateKeyPair().publicKey, issuedAt: T0 + 150, expiresAt: T0 + DAY })
    assert.throws(() => graph.add(stale.bytes), { code: 'ERR_KEY_ROTATED', name: 'KeyRotatedError' })
    // what the new key signed before the rotation counts for the agent: its proof is its consent
    const before = createDeviceCertificate(a1, { device: generateKeyPair().publicKey, issuedAt: T0 + 50, expiresAt: T0 + DAY })
    assert.equal(graph.add(before.bytes).valid, true)
    assert.equal(graph.agentOfDevice(keyIdFromPublicKey(before.statement.device))?.agent, agent)
    // a second rotation of the old key after the first is a rotated-away key speaking
    assert.throws(() => graph.add(createKeyRotation(a0, generateKeyPair(), { issuedAt: T0 + 120 }).bytes), { code: 'ERR_KEY_ROTATED' })
    // a later rotation onto a key already in a chain retires its old key but links nothing
    const x = generateKeyPair()
    graph.add(createKeyRotation(x, a1, { issuedAt: T0 + 120 }).bytes)
    assert.equal(graph.resolveAgent(id(a1)), agent)
    assert.equal(graph.resolveAgent(id(x)), id(x))
    assert.throws(() => graph.add(createRelationship(x, { subject: a0.publicKey, kind: 'friend', issuedAt: T0 + 130, expiresAt: T0 + DAY }).bytes), { code: 'ERR_KEY_ROTATED' })
    // grants and relationships naming a rotated key land on the agent
    const bob = generateKeyPair()
    graph.add(createRelationship(bob, { subject: a1.publicKey, kind: 'friend', issuedAt: T0 + 150, expiresAt: T0 + DAY }).bytes)
    graph.add(createRelationship(a1, { subject: bob.publicKey, kind: 'friend', issuedAt: T0 + 150, expiresAt: T0 + DAY }).bytes)
    assert.deepEqual(graph.relationships(agent).map(r => [r.agent, r.mutual]), [[id(bob), true]])
  })

  it('derives the same graph whatever order statements arrive in', async () => {
    const a0 = generateKeyPair()
    const a1 = generateKeyPair()
    const a2 = generateKeyPair()
    const d1 = generateKeyPair()
    const d2 = generateKeyPair()
    const statements = [
      createKeyRotation(a0, a1, { issuedAt: T0 + 100 }),
      createDeviceCertificate(a0, { device: d1.publicKey, issuedAt: T0 + 80, expiresAt: T0 + DAY }),
      createDeviceCertificate(a1, { device: d2.publicKey, issuedAt: T0 + 200, expiresAt: T0 + DAY }),
      createKeyRotation(a1, a2, { issuedAt: T0 + 300 })
    ]
    clock.t = T0 + 1000
    const answers = (g: TrustGraph): unknown[] => [
      ...[id(a0), id(a1), id(a2)].map(k => [g.resolveAgent(k), g.currentKey(k)]),
      ...[d1, d2].map(d => g.agentOfDevice(id(d))?.agent)
    ]
    for (const s of statements) graph.add(s.bytes)
    const expected = answers(graph)
    assert.deepEqual(expected, [[id(a0), id(a2)], [id(a0), id(a2)], [id(a0), id(a2)], id(a0), id(a0)])
    const other = createTrustGraph({ path: join(dir, 'other.sqlite') }, { clock })
    try {
      for (const s of [...statements].reverse()) other.add(s.bytes)
      assert.deepEqual(answers(other), expected)
      // a statement by a0 after its rotation, taken in before the rotation was known, never counts
      const third = createTrustGraph({ path: join(dir, 'third.sqlite') }, { clock })
      const stale = createDeviceCertificate(a0, { device: generateKeyPair().publicKey, issuedAt: T0 + 500, expiresAt: T0 + DAY })
      third.add(stale.bytes)
      assert.equal(third.agentOfDevice(keyIdFromPublicKey(stale.statement.device))?.agent, id(a0))
      for (const s of statements) third.add(s.bytes)
      assert.equal(third.agentOfDevice(keyIdFromPublicKey(stale.statement.device)), undefined)
      assert.deepEqual(answers(third), expected)
      third.close()
    } finally {
      other.close()
    }
  })

  it('resolves a rotation fork to the earliest rotation', () => {
    const a0 = generateKeyPair()
    const a1 = generateKeyPair()
    const a2 = generateKeyPair()
    clock.t = T0 + 1000
    graph.add(createKeyRotation(a0, a1, { issuedAt: T0 + 100 }).bytes)
    graph.add(createKeyRotation(a0, a2, { issuedAt: T0 + 50 }).bytes)
    assert.equal(graph.currentKey(id(a0)), id(a2))
    assert.equal(graph.resolveAgent(id(a1)), id(a1))
  })

  it('reports relationships with their mutual flag', () => {
    const [alice, bob, carol] = [generateKeyPair(), generateKeyPair(), generateKeyPair()]
    const ab = createRelationship(alice, { subject: bob.publicKey, kind: 'family', issuedAt: T0, expiresAt: T0 + DAY })
    graph.add(ab.bytes)
    graph.add(createRelationship(bob, { subject: alice.publicKey, kind: 'family', issuedAt: T0, expiresAt: T0 + DAY }).bytes)
    graph.add(createRelationship(alice, { subject: carol.publicKey, kind: 'friend', issuedAt: T0, expiresAt: T0 + DAY }).bytes)
    graph.add(createRelationship(carol, { subject: alice.publicKey, kind: 'community', issuedAt: T0, expiresAt: T0 + DAY }).bytes)
    const rels = graph.relationships(id(alice))
    const find = (agent: KeyPair, kind: string): unknown => rels.find(r => r.agent === id(agent) && r.kind === kind)
    assert.equal(rels.length, 3)
    assert.deepEqual(find(bob, 'family'), { agent: id(bob), kind: 'family', outgoing: ab.id, incoming: (find(bob, 'family') as any).incoming, mutual: true })
    assert.equal((find(carol, 'friend') as any).mutual, false)
    assert.equal((find(carol, 'community') as any).outgoing, undefined)
    assert.equal(graph.relationships(id(bob))[0].mutual, true)
    graph.add(createRevocation(alice, { target: ab.id, issuedAt: T0 }).bytes)
    assert.equal(graph.relationships(id(bob))[0].mutual, false)
    assert.equal(graph.relationships(id(bob))[0].outgoing != null, true)
    assert.deepEqual([graph.add(ab.bytes).added, graph.add(ab.bytes).valid], [false, false])
    // expiry ends a relationship
    clock.t = T0 + DAY
    assert.deepEqual(graph.relationships(id(alice)), [])
  })

  it('computes the replication policy from grants and node labels', () => {
    const [alice, bob, carol, dave] = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()]
    const toBob = createStorageGrant(alice, { grantee: bob.publicKey, layer: 'reciprocal', quotaBytes: 20 * GiB, labels: { region: 'eu' }, issuedAt: T0, expiresAt: T0 + DAY })
    const toBobMore = createStorageGrant(alice, { grantee: bob.publicKey, layer: 'reciprocal', quotaBytes: 30 * GiB, labels: { region: 'eu', rack: 'r2' }, issuedAt: T0, expiresAt: T0 + DAY })
    const toCarol = createStorageGrant(alice, { grantee: carol.publicKey, layer: 'gift', quotaBytes: GiB, issuedAt: T0, expiresAt: T0 + 2 * DAY })
    const toDave = createStorageGrant(alice, { grantee: dave.publicKey, layer: 'invested', quotaBytes: 5 * GiB, labels: { region: 'us' }, issuedAt: T0, expiresAt: T0 + DAY })
    const fromBob = createStorageGrant(bob, { grantee: alice.publicKey, layer: 'reciprocal', quotaBytes: 10 * GiB, issuedAt: T0, expiresAt: T0 + DAY })
    for (const s of [toBob, toBobMore, toCarol, toDave, fromBob]) graph.add(s.bytes)

    const policy = (labels: Record<string, string>): unknown => graph.replicationPolicy({ agentId: id(alice), labels })
      .map(t => [t.agent === id(bob) ? 'bob' : t.agent === id(carol) ? 'carol' : 'dave', t.layer, t.quotaBytes / GiB, t.grantId])
    const sorted = (rows: any): unknown => rows.sort((a: any, b: any) => a[0] < b[0] ? -1 : 1)
    assert.deepEqual(sorted(policy({ region: 'eu' })), [['bob', 'reciprocal', 20, toBob.id], ['carol', 'gift', 1, toCarol.id]])
    assert.deepEqual(sorted(policy({ region: 'eu', rack: 'r2' })), [['bob', 'reciprocal', 30, toBobMore.id], ['carol', 'gift', 1, toCarol.id]])
    assert.deepEqual(policy({}), [['carol', 'gift', 1, toCarol.id]])
    assert.deepEqual(sorted(policy({ region: 'us' })), [['carol', 'gift', 1, toCarol.id], ['dave', 'invested', 5, toDave.id]])
    // bob's node holds alice's pins
    assert.deepEqual(graph.replicationPolicy({ agentId: id(bob) }).map(t => [t.agent, t.layer]), [[id(alice), 'reciprocal']])

    assert.equal(graph.grantsGiven(id(alice)).length, 4)
    assert.deepEqual(graph.grantsReceived(id(alice)).map(g => g.id), [fromBob.id])
    assert.deepEqual(graph.grantsReceived(id(bob)).map(g => g.quotaBytes).sort(), [20 * GiB, 30 * GiB])

    // revocation: only by the grantor, and then the grant is gone everywhere
    graph.add(createRevocation(bob, { target: toBobMore.id, issuedAt: T0 }).bytes)
    assert.deepEqual(sorted(policy({ region: 'eu', rack: 'r2' })), [['bob', 'reciprocal', 30, toBobMore.id], ['carol', 'gift', 1, toCarol.id]])
    graph.add(createRevocation(alice, { target: toBobMore.id, issuedAt: T0 }).bytes)
    assert.deepEqual(sorted(policy({ region: 'eu', rack: 'r2' })), [['bob', 'reciprocal', 20, toBob.id], ['carol', 'gift', 1, toCarol.id]])
    assert.equal(graph.grantsGiven(id(alice)).length, 3)
    // expiry
    clock.t = T0 + DAY
    assert.deepEqual(policy({ region: 'eu', rack: 'r2' }), [['carol', 'gift', 1, toCarol.id]])
  })

  it('keeps a revocation that arrives before its target', () => {
    const alice = generateKeyPair()
    const grant = createStorageGrant(alice, { grantee: generateKeyPair().publicKey, layer: 'gift', quotaBytes: 1, issuedAt: T0, expiresAt: T0 + DAY })
    graph.add(createRevocation(alice, { target: grant.id, issuedAt: T0 }).bytes)
    const late = graph.add(grant.bytes)
    assert.deepEqual([late.added, late.valid], [true, false])
    assert.deepEqual(graph.grantsGiven(id(alice)), [])
    assert.equal(graph.statements().statements.some(s => s.id === grant.id), false)
    // a revocation by someone else does not block the target
    const other = createStorageGrant(alice, { grantee: generateKeyPair().publicKey, layer: 'gift', quotaBytes: 1, issuedAt: T0, expiresAt: T0 + DAY })
    graph.add(createRevocation(generateKeyPair(), { target: other.id, issuedAt: T0 }).bytes)
    graph.add(other.bytes)
    assert.deepEqual(graph.grantsGiven(id(alice)).map(g => g.id), [other.id])
  })

  it('pages statements for exchange and survives a reopen', () => {
    const alice = generateKeyPair()
    const added: string[] = []
    const seen: string[] = []
    const unsubscribe = graph.onStatement(r => seen.push(r.id))
    for (let i = 0; i < 25; i++) {
      const s = createRelationship(alice, { subject: generateKeyPair().publicKey, kind: 'community', issuedAt: T0, expiresAt: T0 + DAY })
      graph.add(s.bytes)
      added.push(s.id)
    }
    unsubscribe()
    assert.deepEqual(seen, added)
    const got: string[] = []
    let cursor = 0
    for (;;) {
      const page = graph.statements({ since: cursor, limit: 10 })
      got.push(...page.statements.map(s => s.id))
      cursor = page.cursor
      if (!page.more) break
    }
    assert.deepEqual(got, added)
    assert.equal(graph.statements({ since: cursor }).statements.length, 0)

    const snapshot = graph.graphSnapshot()
    assert.deepEqual(snapshot.counts, { statements: 25, agents: 26, devices: 0, relationships: 25, grants: 0 })
    assert.deepEqual(snapshot.schema_version, [1, 0])
    JSON.stringify(snapshot)

    graph.close()
    graph = open()
    assert.equal(graph.relationships(id(alice)).length, 25)
    assert.equal(graph.statements().statements.length, 25)
    const other = createTrustGraph({ path: join(dir, 'peer.sqlite') }, { clock })
    try {
      for (const s of graph.statements().statements) other.add(s.bytes)
      assert.deepEqual(other.relationships(id(alice)), graph.relationships(id(alice)))
    } finally {
      other.close()
    }
  })
})
