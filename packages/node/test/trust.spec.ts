import assert from 'node:assert/strict'
import { join } from 'node:path'
import { hostname } from 'node:os'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { FastifyInstance } from 'fastify'
import { createDeviceCertificate, createRelationship, generateKeyPair, keyIdFromPublicKey, verifyStatement } from '@hearth/trust'
import { buildApi, HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { cleanEnv, runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'
import { adoptPeer } from './peer-helpers.js'

const YEAR = 365 * 86_400_000
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')

describe('trust over HTTP', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let node: HearthNode
  let app: FastifyInstance
  let auth: Record<string, string>
  before(async () => {
    dir = await tempDir()
    node = new HearthNode(loadConfig({ env: { HEARTH_DATA: dir.path, ENABLE_P2P: 'false', HEARTH_AUTO_AGENT: 'false' } }), { logger: silentLogger })
    await node.start()
    app = await buildApi({ node })
    auth = { authorization: `Bearer ${node.token}` }
  })
  after(async () => { await app?.close(); await node?.stop(); await dir.remove() })

  const count = async (): Promise<number> => (await app.inject('/trust/graph')).json().counts.statements

  it('creates an agent once, and signs relationships and grants with it', async () => {
    const before = (await app.inject('/trust/self')).json()
    assert.equal(before.agent_id, null)
    const early = await app.inject({ method: 'POST', url: '/trust/relationships', headers: auth, payload: { agent: keyIdFromPublicKey(generateKeyPair().publicKey), kind: 'friend' } })
    assert.equal(early.statusCode, 409)
    assert.equal(early.json().error, 'ERR_NO_AGENT_KEY')

    const init = await app.inject({ method: 'POST', url: '/trust/init', headers: auth })
    assert.equal(init.statusCode, 200)
    const self = init.json()
    assert.equal(self.has_agent_key, true)
    assert.match(self.agent_id, /^z6Mk/)
    assert.equal((await app.inject({ method: 'POST', url: '/trust/init', headers: auth })).json().agent_id, self.agent_id, 'idempotent')

    const other = keyIdFromPublicKey(generateKeyPair().publicKey)
    const rel = await app.inject({ method: 'POST', url: '/trust/relationships', headers: auth, payload: { agent: other, kind: 'family' } })
    assert.equal(rel.statusCode, 201)
    const grant = await app.inject({ method: 'POST', url: '/trust/grants', headers: auth, payload: { agent: other, layer: 'reciprocal', quota: '20GiB', labels: { region: 'eu' } } })
    assert.equal(grant.statusCode, 201, grant.body)
    const agent = (await app.inject(`/trust/agents/${self.agent_id}`)).json()
    assert.deepEqual(agent.relationships.map((r: any) => [r.agent, r.kind, r.mutual]), [[other, 'family', false]])
    assert.equal(agent.grants_given[0].quota_bytes, 20 * 2 ** 30)
    assert.deepEqual(agent.grants_given[0].labels, { region: 'eu' })
    assert.equal(agent.devices[0].device, self.device_id)
    assert.deepEqual(node.trust.graph.replicationPolicy({ agentId: self.agent_id, labels: { region: 'eu' } }).map(p => p.agent), [other])

    const revoke = await app.inject({ method: 'POST', url: '/trust/revocations', headers: auth, payload: { target: grant.json().id } })
    assert.equal(revoke.statusCode, 201)
    assert.equal((await app.inject(`/trust/agents/${self.agent_id}`)).json().grants_given.length, 0)
  })

  it('stores statements signed elsewhere, and refuses forged ones whole', async () => {
    const alice = generateKeyPair()
    const bob = generateKeyPair()
    const good = createRelationship(alice, { subject: bob.publicKey, kind: 'friend', expiresAt: Date.now() + YEAR })
    const n0 = await count()
    const res = await app.inject({ method: 'POST', url: '/trust/statements', headers: auth, payload: { statements: [b64(good.bytes)] } })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json().results, [{ id: good.id, added: true, valid: true }])
    assert.equal(await count(), n0 + 1)

    const another = createRelationship(bob, { subject: alice.publicKey, kind: 'friend', expiresAt: Date.now() + YEAR })
    const flipped = Uint8Array.from(another.bytes)
    flipped[20] ^= 0x01 // inside the signature, which the canonical encoding puts first
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ statements: [b64(another.bytes), b64(flipped)] }, 400, 'ERR_INVALID_SIGNATURE'],
      [{ statements: ['not base64!'] }, 400, 'ERR_MALFORMED_STATEMENT'],
      [{ statements: [b64(new Uint8Array([1, 2, 3]))] }, 400, 'ERR_MALFORMED_STATEMENT'],
      [{ statements: [b64(new Uint8Array(20_000))] }, 413, 'ERR_STATEMENT_TOO_LARGE'],
      [{ statements: [] }, 400, 'ERR_VALIDATION']
    ]
    for (const [payload, status, code] of cases) {
      const r = await app.inject({ method: 'POST', url: '/trust/statements', headers: auth, payload: payload as any })
      assert.equal(r.statusCode, status, r.body)
      assert.equal(r.json().error, code)
    }
    assert.equal(await count(), n0 + 1, 'the good statement in the refused batch was not stored either')
    const unauth = await app.inject({ method: 'POST', url: '/trust/statements', payload: { statements: [b64(another.bytes)] } })
    assert.equal(unauth.statusCode, 401)
  })

  it('answers 404 for an unknown agent, 400 for a malformed id, 409 for pairing without p2p', async () => {
    const unknown = await app.inject(`/trust/agents/${keyIdFromPublicKey(generateKeyPair().publicKey)}`)
    assert.equal(unknown.statusCode, 404)
    assert.equal(unknown.json().error, 'ERR_AGENT_NOT_FOUND')
    assert.equal((await app.inject('/trust/agents/nope')).statusCode, 400)
    const invite = await app.inject({ method: 'POST', url: '/trust/invites', headers: auth })
    assert.equal(invite.statusCode, 409)
    assert.equal(invite.json().error, 'ERR_P2P_DISABLED')
  })
})

describe('trust between daemons', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  before(async () => { dir = await tempDir() })
  after(async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))); await dir.remove() })
  const cli = async (d: DaemonProc, ...args: string[]): Promise<string> => {
    const r = await runCli(args, cleanEnv({ HEARTH_DATA: d.dataDir }))
    assert.equal(r.code, 0, `hearth ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  it('pairs a second device, and spreads statements by push and by pull', async () => {
    const [home, laptop, cousin] = await Promise.all(['home', 'laptop', 'cousin'].map(async n => await spawnDaemon(join(dir.path, n))))
    daemons.push(home, laptop, cousin)
    const homeAgent = JSON.parse(await cli(home, 'trust', 'init', '--json')).agent_id
    const cousinAgent = JSON.parse(await cli(cousin, 'trust', 'init', '--json')).agent_id

    const invitation = JSON.parse(await cli(home, 'trust', 'invite', '--json')).invitation
    const joined = JSON.parse(await cli(laptop, 'trust', 'join', invitation, '--name', 'laptop', '--json'))
    assert.equal(joined.agent_id, homeAgent)
    assert.equal(joined.has_agent_key, false)
    const devices = (await home.get(`/trust/agents/${homeAgent}`)).body.devices.map((d: any) => d.name).sort()
    assert.deepEqual(devices, [hostname(), 'laptop'].sort())

    // the invitation was used up
    const late = await spawnDaemon(join(dir.path, 'late'))
    daemons.push(late)
    const again = await runCli(['trust', 'join', invitation], cleanEnv({ HEARTH_DATA: late.dataDir }))
    assert.equal(again.code, 1)
    assert.match(again.stderr, /unknown, used or expired/)

    // pushed to the connected laptop
    await cli(home, 'trust', 'relate', cousinAgent, '--as', 'family')
    await waitFor(async () => (await laptop.get(`/trust/agents/${homeAgent}`)).body.relationships?.length === 1, 10_000, 'the laptop to learn the relationship')

    // pulled by the cousin's daemon when it connects
    await cli(cousin, 'peers', 'connect', (await home.get('/p2p/status')).body.addresses[0])
    await waitFor(async () => (await cousin.get(`/trust/agents/${cousinAgent}`)).body.relationships?.length === 1, 10_000, 'the cousin to learn the relationship')
    await cli(cousin, 'trust', 'relate', homeAgent, '--as', 'family')
    const view = async (d: DaemonProc): Promise<unknown> => (await d.get(`/trust/agents/${homeAgent}`)).body.relationships
    await waitFor(async () => JSON.stringify(await view(home)).includes('"mutual":true') && JSON.stringify(await view(laptop)).includes('"mutual":true'), 10_000, 'the mutual relationship everywhere')
    assert.deepEqual(await view(home), await view(cousin))
    assert.deepEqual(await view(home), await view(laptop))
  })
})

describe('trust exchange against a misbehaving peer', () => {
  it('refuses forged statements, then disconnects and bans the sender', async () => {
    const dir = await tempDir()
    const node = new HearthNode(loadConfig({ env: { HEARTH_DATA: dir.path, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', HEARTH_AUTO_AGENT: 'false' } }), { logger: silentLogger })
    await node.start()
    const rogue = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    const stranger = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    try {
      const target = node.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!
      const alice = generateKeyPair()
      const valid = Uint8Array.from(createRelationship(alice, { subject: generateKeyPair().publicKey, kind: 'friend', expiresAt: Date.now() + YEAR }).bytes)
      const forged = Uint8Array.from(valid)
      forged[forged.length - 1] ^= 0xff
      // a stranger may push only its own device's certificate (how it becomes known): a valid
      // statement about others, or a certificate of another device, is not stored
      const strangerAgent = generateKeyPair()
      const ownCert = Uint8Array.from(createDeviceCertificate(strangerAgent, { device: stranger.peerId.publicKey!.raw, expiresAt: Date.now() + YEAR }).bytes)
      const otherCert = Uint8Array.from(createDeviceCertificate(strangerAgent, { device: generateKeyPair().publicKey, expiresAt: Date.now() + YEAR }).bytes)
      const push = await stranger.dialProtocol(multiaddr(target), '/hearth/trust/1.0.0')
      await lpStream(push).write(dagCbor.encode({ type: 'push', statements: [valid, otherCert, ownCert] }))
      await push.close().catch(() => {})
      await waitFor(() => node.trust.graph.graphSnapshot({}).counts.statements === 1, 5000, 'the stranger\'s own certificate')
      assert.equal(node.trust.graph.get(createdId(ownCert)) != null, true)
      assert.equal(node.penalty.strikesOf(stranger.peerId.toString()), 0)
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(node.trust.graph.graphSnapshot({}).counts.statements, 1, 'nothing else the stranger pushed was stored')
      // a stranger's statements cost it a hundred times a member's against 5,000 a minute: 300 spent, two full
      // pushes (1,600 each) still fit, the third is refused with a strike
      const fullPush = async (): Promise<void> => {
        const s = await stranger.dialProtocol(multiaddr(target), '/hearth/trust/1.0.0')
        await lpStream(s).write(dagCbor.encode({ type: 'push', statements: Array(16).fill(ownCert) }))
        await s.close().catch(() => {})
      }
      await fullPush()
      await fullPush()
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(node.penalty.strikesOf(stranger.peerId.toString()), 0, 'pushes within the rate were struck')
      await fullPush()
      await waitFor(() => node.penalty.strikesOf(stranger.peerId.toString()) === 1, 5000, 'a strike past the stranger rate')
      // the rogue is one of the agent's own devices gone bad: its pushes are read, and judged
      await adoptPeer(node, rogue.peerId)
      const before = node.trust.graph.graphSnapshot({}).counts.statements
      for (let i = 0; i < 5; i++) {
        const stream = await rogue.dialProtocol(multiaddr(target), '/hearth/trust/1.0.0')
        const lp = lpStream(stream)
        await lp.write(dagCbor.encode({ type: 'push', statements: [forged] }))
        await stream.close().catch(() => {})
        await waitFor(() => node.penalty.strikesOf(rogue.peerId.toString()) === i + 1 || node.penalty.isBanned(rogue.peerId.toString()), 5000, `strike ${i + 1}`)
      }
      assert.equal(node.penalty.isBanned(rogue.peerId.toString()), true)
      await waitFor(() => rogue.getConnections().length === 0, 5000, 'the rogue to be disconnected')
      // a banned peer is refused: no protocol stream can be opened, and it never shows as connected
      await assert.rejects(rogue.dialProtocol(multiaddr(target), '/hearth/trust/1.0.0', { signal: AbortSignal.timeout(5000) }))
      assert.equal(node.p2pStatus().peers.some(p => p.peer_id === rogue.peerId.toString()), false)
      assert.equal(node.trust.graph.graphSnapshot({}).counts.statements, before, 'nothing forged was stored')
      assert.ok((node.trustExchange?.stats.rejected ?? 0) >= 5)
    } finally {
      await stranger.stop()
      await rogue.stop()
      await node.stop()
      await dir.remove()
    }
  })
})

describe('trust exchange catching up', () => {
  it('pulls again from a connected peer, so a statement whose push never came still arrives', async () => {
    const dir = await tempDir()
    const node = new HearthNode(loadConfig({ env: { HEARTH_DATA: dir.path, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', HEARTH_TRUST_PULL_INTERVAL_MS: '300', HEARTH_AUTO_AGENT: 'false' } }), { logger: silentLogger })
    await node.start()
    // a peer that stores a statement but never pushes it: only a pull can bring it over
    const served: Uint8Array[] = []
    let pulls = 0
    let lastSince = -1
    const peer = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    await peer.handle('/hearth/trust/1.0.0', async stream => {
      const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
      const msg = dagCbor.decode<any>((await lp.read()).subarray())
      if (msg.type === 'pull') {
        pulls++
        lastSince = msg.since
        const fresh = served.slice(msg.since)
        await lp.write(dagCbor.encode({ type: 'page', statements: fresh, cursor: served.length, more: false }))
      }
      await stream.close().catch(() => {})
    })
    try {
      await peer.dial(multiaddr(node.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!))
      await waitFor(() => pulls >= 1, 10_000, 'the pull on identify')
      const statement = createRelationship(generateKeyPair(), { subject: generateKeyPair().publicKey, kind: 'friend', expiresAt: Date.now() + YEAR })
      served.push(Uint8Array.from(statement.bytes))
      await waitFor(() => node.trust.graph.get(statement.id) != null, 10_000, 'the statement to be pulled')
      const after = pulls
      // the cursor moved: later pulls ask only for what is newer
      await waitFor(() => pulls >= after + 2, 10_000, 'more pulls')
      assert.equal(lastSince, 1)
      assert.equal(node.trust.graph.graphSnapshot({}).counts.statements, 1)
    } finally {
      await peer.stop()
      await node.stop()
      await dir.remove()
    }
  })
})

function createdId (bytes: Uint8Array): string {
  return verifyStatement(bytes).id
}
