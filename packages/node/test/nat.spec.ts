import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { tempDir, waitFor } from './helpers.js'
import { createNet, netnsUnavailable, nsDaemon } from './netns.js'
import type { Net, NsDaemon } from './netns.js'

/**
 * Two homes behind their own NAT routers and a rack on the public side, each
 * a network namespace with a real daemon in it. The homes cannot dial each
 * other; the rack relays for its family.
 */
const unavailable = netnsUnavailable()

describe('devices behind home routers', { skip: unavailable }, () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let net: Net
  const daemons: NsDaemon[] = []
  let rack: NsDaemon
  let homeA: NsDaemon
  let homeB: NsDaemon
  let stranger: NsDaemon
  const RACK_IP = '203.0.113.10'

  before(async () => {
    dir = await tempDir()
    net = await createNet()
    const rackNs = await net.publicHost('rack', RACK_IP)
    const aNs = await net.home('home-a', '203.0.113.1', '192.168.1')
    const bNs = await net.home('home-b', '203.0.113.2', '192.168.2')
    rack = await nsDaemon(rackNs, join(dir.path, 'rack'), { HEARTH_RELAY: 'true' })
    daemons.push(rack)
    const rackAddr = `/ip4/${RACK_IP}/tcp/4101/p2p/${rack.peerId}`
    const env = { HEARTH_RELAY_RESERVE: 'true', HEARTH_BOOTSTRAP: rackAddr, HEARTH_REPLICATION_INTERVAL_MS: '1000', HEARTH_TRUST_PULL_INTERVAL_MS: '1000' }
    homeA = await nsDaemon(aNs, join(dir.path, 'home-a'), env)
    homeB = await nsDaemon(bNs, join(dir.path, 'home-b'), env)
    daemons.push(homeA, homeB)
    // someone else on the public side, with no link to the family, who would like the rack to relay for it
    stranger = await nsDaemon(await net.publicHost('stranger', '203.0.113.20'), join(dir.path, 'stranger'), env)
    daemons.push(stranger)
  })
  after(async () => {
    await Promise.all(daemons.map(async d => { await d.stop() }))
    await net?.destroy()
    await dir?.remove()
  })

  it('homes that cannot dial each other pair through the rack, reserve on it, meet over a relayed connection, and share a document', { timeout: 180_000 }, async () => {
    assert.equal((await rack.call('POST', '/trust/init', {})).status, 200)
    for (const [d, name] of [[homeA, 'home-a'], [homeB, 'home-b']] as const) {
      const invite = await rack.call('POST', '/trust/invites', {})
      const joined = await d.call('POST', '/trust/join', { invitation: invite.body.invitation, name })
      assert.equal(joined.status, 200, JSON.stringify(joined.body) + d.output().slice(-2000))
    }
    // neither home is reachable from the other: what they dial directly fails, the relay carries them
    for (const d of [homeA, homeB]) {
      await waitFor(async () => (await d.call('GET', '/p2p/status')).body.relay.reserved_on.includes(rack.peerId), 60_000, `${d.ns} to reserve on the rack`)
    }
    const circuitB = (await homeB.call('GET', '/p2p/status')).body.addresses.find((a: string) => a.includes('/p2p-circuit') && a.includes(RACK_IP))
    assert.ok(circuitB != null, 'home-b advertises its circuit address through the rack')
    const direct = (await homeB.call('GET', '/p2p/status')).body.addresses.find((a: string) => a.startsWith('/ip4/192.168.2.2/tcp/'))
    assert.equal((await homeA.call('POST', '/p2p/connect', { addr: direct })).status >= 400, true, 'home-a dialled home-b\'s LAN address across two NATs')
    const relayed = await homeA.call('POST', '/p2p/connect', { addr: circuitB })
    assert.equal(relayed.status, 200, JSON.stringify(relayed.body))
    const peerB = (await homeA.call('GET', '/p2p/status')).body.peers.find((p: any) => p.peer_id === homeB.peerId)
    assert.equal(peerB?.path, 'relayed')
    assert.equal((await rack.call('GET', '/p2p/status')).body.relay.reservations, 2)

    // the stranger is connected to the rack (its bootstrap peer) but gets no reservation
    assert.equal((await stranger.call('POST', '/trust/init', {})).status, 200)
    await waitFor(async () => ((await rack.call('GET', '/p2p/status')).body.limits.reservations_refused ?? 0) >= 1, 30_000, 'the rack to refuse the stranger')
    assert.deepEqual((await stranger.call('GET', '/p2p/status')).body.relay.reserved_on, [])
    assert.equal((await rack.call('GET', '/p2p/status')).body.relay.reservations, 2)

    // a document edited in home-a reaches home-b (through the rack, a device of the same agent)
    const doc = await homeA.call('POST', '/docs', { note: 'from home-a' })
    assert.equal(doc.status, 201, JSON.stringify(doc.body))
    const id = doc.body.id
    await waitFor(async () => (await homeB.call('GET', `/cache/docs/${id}`).catch(() => undefined))?.body?.value?.note === 'from home-a', 60_000, 'the document at home-b').catch(async err => {
      const atRack = await rack.call('GET', `/cache/docs/${id}`)
      const sessions = async (d: NsDaemon): Promise<string> => JSON.stringify((await d.call('GET', '/p2p/status')).body.sync.sessions.map((x: any) => [x.peer_id.slice(-6), x.subscribed, x.peer_subscribed]))
      throw new Error(`${String(err.message)}; at the rack: ${atRack.status} ${JSON.stringify(atRack.body).slice(0, 200)}; sessions a ${await sessions(homeA)} rack ${await sessions(rack)} b ${await sessions(homeB)}`)
    })
  })
})

if (unavailable != null) console.log(`# nat.spec skipped: ${unavailable}`)
