import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { tempDir, waitFor } from './helpers.js'
import { createNet, netnsUnavailable, nsDaemon } from './netns.js'
import type { Net, NsDaemon } from './netns.js'

/**
 * Homes behind their own NAT routers and a rack on the public side, each a
 * network namespace with a real daemon in it. The homes cannot dial each
 * other; the rack relays for its family; a relayed connection between two
 * homes becomes direct by hole punching where the routers keep source ports
 * (home-a, home-b) and stays relayed where one does not (home-c, a symmetric
 * NAT).
 */
const unavailable = netnsUnavailable()
const MiB = 1024 * 1024

describe('devices behind home routers', { skip: unavailable }, () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let net: Net
  const daemons: NsDaemon[] = []
  let rack: NsDaemon
  let homeA: NsDaemon
  let homeB: NsDaemon
  let homeC: NsDaemon
  let stranger: NsDaemon
  // libp2p takes 203.0.113/24 and other documentation ranges for private ones; this is an address it calls public
  const RACK_IP = '11.0.0.10'

  const status = async (d: NsDaemon): Promise<any> => (await d.call('GET', '/p2p/status')).body
  const pathTo = async (from: NsDaemon, to: NsDaemon): Promise<string | undefined> => (await status(from)).peers.find((p: any) => p.peer_id === to.peerId)?.path
  const circuitOf = async (d: NsDaemon): Promise<string> => {
    const addr = (await status(d)).addresses.find((a: string) => a.includes('/p2p-circuit') && a.includes(RACK_IP))
    assert.ok(addr != null, `${d.ns} advertises a circuit address through the rack`)
    return addr
  }
  const report = async (): Promise<string> => {
    const lines = []
    for (const d of [rack, homeA, homeB, homeC]) {
      const s = await status(d).catch(() => undefined)
      lines.push(`${d.ns}: ${JSON.stringify({ reach: s?.reachability, punch: s?.hole_punch, peers: s?.peers?.map((p: any) => [p.peer_id.slice(-6), p.path]) })}`)
    }
    return lines.join('\n')
  }

  before(async () => {
    dir = await tempDir()
    net = await createNet()
    const rackNs = await net.publicHost('rack', RACK_IP)
    const aNs = await net.home('home-a', '11.0.0.1', '192.168.1')
    const bNs = await net.home('home-b', '11.0.0.2', '192.168.2')
    const cNs = await net.home('home-c', '11.0.0.3', '192.168.3', { symmetric: true })
    // the rack relays but holds no copies of the homes' pins (HEARTH_HOLD_OWN=false): what a home pins must reach the
    // other homes, one of them (home-c) only through the relay, which carries 32 MiB per connection
    rack = await nsDaemon(rackNs, join(dir.path, 'rack'), { HEARTH_RELAY: 'true', HEARTH_RELAY_DATA: '32MiB', HEARTH_HOLD_OWN: 'false', HEARTH_REPLICATION_INTERVAL_MS: '1000', HEARTH_PROOF_INTERVAL_MS: '2000' })
    daemons.push(rack)
    const rackAddr = `/ip4/${RACK_IP}/tcp/4101/p2p/${rack.peerId}`
    // no HEARTH_RELAY_RESERVE: each home reserves once it finds itself behind a router
    const env = { HEARTH_BOOTSTRAP: rackAddr, HEARTH_REPLICATION_INTERVAL_MS: '1000', HEARTH_TRUST_PULL_INTERVAL_MS: '1000', HEARTH_PROOF_INTERVAL_MS: '2000' }
    homeA = await nsDaemon(aNs, join(dir.path, 'home-a'), env)
    homeB = await nsDaemon(bNs, join(dir.path, 'home-b'), env)
    homeC = await nsDaemon(cNs, join(dir.path, 'home-c'), env)
    daemons.push(homeA, homeB, homeC)
    // someone else on the public side, with no link to the family, who would like the rack to relay for it
    stranger = await nsDaemon(await net.publicHost('stranger', '11.0.0.20'), join(dir.path, 'stranger'), { ...env, HEARTH_RELAY_RESERVE: 'always' })
    daemons.push(stranger)
  })
  after(async () => {
    await Promise.all(daemons.map(async d => { await d.stop() }))
    await net?.destroy()
    await dir?.remove()
  })

  it('the rack finds itself public and the homes private; the homes pair through the rack and reserve on it, a stranger does not', { timeout: 120_000 }, async () => {
    // AutoNAT: a home dialled the rack's address back; identify: the rack saw each home at its router's address
    await waitFor(async () => (await status(rack)).reachability?.reachability === 'public', 60_000, 'the rack to find itself public').catch(async err => { throw new Error(`${String(err.message)}\n${await report()}`) })
    for (const [d, router] of [[homeA, '11.0.0.1'], [homeB, '11.0.0.2'], [homeC, '11.0.0.3']] as const) {
      await waitFor(async () => (await status(d)).reachability?.reachability === 'private', 30_000, `${d.ns} to find itself behind its router`)
      assert.deepEqual((await status(d)).reachability.observed_ips, [router])
    }
    assert.equal((await rack.call('POST', '/trust/init', {})).status, 200)
    for (const [d, name] of [[homeA, 'home-a'], [homeB, 'home-b'], [homeC, 'home-c']] as const) {
      const invite = await rack.call('POST', '/trust/invites', {})
      const joined = await d.call('POST', '/trust/join', { invitation: invite.body.invitation, name })
      assert.equal(joined.status, 200, JSON.stringify(joined.body) + d.output().slice(-2000))
    }
    for (const d of [homeA, homeB, homeC]) {
      await waitFor(async () => (await status(d)).relay.reserved_on.includes(rack.peerId), 60_000, `${d.ns} to reserve on the rack`)
    }
    assert.equal((await status(rack)).relay.reservations, 3)

    // the stranger is connected to the rack (its bootstrap peer) but gets no reservation
    assert.equal((await stranger.call('POST', '/trust/init', {})).status, 200)
    await waitFor(async () => ((await status(rack)).limits.reservations_refused ?? 0) >= 1, 30_000, 'the rack to refuse the stranger')
    assert.deepEqual((await status(stranger)).relay.reserved_on, [])
    assert.equal((await status(rack)).relay.reservations, 3)
    const metrics = String((await rack.call('GET', '/metrics')).body)
    assert.match(metrics, /hearth_p2p_reachability\{state="public"\} 1/)
  })

  it('two homes meet over the relay, punch through to a direct connection, share a document and replicate a 64 MiB blob', { timeout: 240_000 }, async () => {
    const direct = (await status(homeB)).addresses.find((a: string) => a.startsWith('/ip4/192.168.2.2/tcp/'))
    assert.equal((await homeA.call('POST', '/p2p/connect', { addr: direct })).status >= 400, true, 'home-a dialled home-b\'s LAN address across two NATs')
    const relayed = await homeA.call('POST', '/p2p/connect', { addr: await circuitOf(homeB) })
    assert.equal(relayed.status, 200, JSON.stringify(relayed.body))
    assert.equal(await pathTo(homeA, homeB), 'relayed', 'first relayed')
    // home-b, which the relayed connection came in to, offers; both dial at once from the ports they named
    await waitFor(async () => await pathTo(homeA, homeB) === 'direct' && await pathTo(homeB, homeA) === 'direct', 30_000, 'the connection to become direct')
      .catch(async err => { throw new Error(`${String(err.message)}\n${await report()}`) })
    const punchB = (await status(homeB)).hole_punch
    assert.ok(punchB.successes >= 1 && punchB.last.result === 'direct' && punchB.last.peer === homeA.peerId, JSON.stringify(punchB))
    assert.ok((await status(homeA)).hole_punch.successes >= 1)
    // direct, and dialled from the routers' public addresses, not the LANs'
    const addrs = (await status(homeA)).peers.find((p: any) => p.peer_id === homeB.peerId).addrs
    assert.ok(addrs.some((a: string) => a.startsWith('/ip4/11.0.0.2/tcp/')), JSON.stringify(addrs))
    assert.match(String((await homeB.call('GET', '/metrics')).body), /hearth_hole_punch_total\{result="success"\} [1-9]/)

    const doc = await homeA.call('POST', '/docs', { note: 'from home-a' })
    assert.equal(doc.status, 201, JSON.stringify(doc.body))
    await waitFor(async () => (await homeB.call('GET', `/cache/docs/${String(doc.body.id)}`).catch(() => undefined))?.body?.value?.note === 'from home-a', 60_000, 'the document at home-b')

    // 64 MiB pinned at home-a: home-b (direct now) fetches and proves its copy; home-c, behind the symmetric NAT,
    // is reached only through the relay, whose 32 MiB per connection the blob does not fit in, so home-c waits for a
    // direct connection (HEARTH_RELAY_TRANSFERS=limited) rather than starting a transfer the relay would cut
    const file = join(dir.path, 'big.bin')
    const bytes = randomBytes(64 * MiB)
    writeFileSync(file, bytes)
    const added = await homeA.transfer('POST', '/blob?layer=sovereign', { upload: file })
    assert.equal(added.status, 201, JSON.stringify(added.body))
    const cid = String(added.body.cid)
    const addedAt = Date.now()
    const deviceB = (await homeB.call('GET', '/trust/self')).body.device_id
    await waitFor(async () => (await homeA.call('GET', '/replication/status')).body.own.find((r: any) => r.cid === cid)?.holders
      .some((h: any) => h.device === deviceB && h.confirmed && h.proof?.result === 'ok'), 120_000, 'home-b\'s proven copy of the blob')
      .catch(async err => {
        const own = (await homeA.call('GET', '/replication/status')).body.own.find((r: any) => r.cid === cid)
        throw new Error(`${String(err.message)}: ${JSON.stringify(own)}\n${await report()}`)
      })
    console.log(`# 64 MiB from home-a proven at home-b ${Date.now() - addedAt} ms after it was added`)
    await waitFor(async () => (await homeC.call('GET', '/replication/status')).body.roots.find((r: any) => r.cid === cid)?.error === 'ERR_RELAY_LIMIT', 30_000, 'home-c to wait for a direct connection')
    assert.equal((await homeC.call('GET', `/blob/${cid}/info`)).status, 404, 'home-c started no transfer the relay would cut')
    const copy = join(dir.path, 'copy.bin')
    assert.equal((await homeB.transfer('GET', `/blob/${cid}`, { output: copy })).status, 200)
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
    assert.equal(sha(readFileSync(copy)), sha(bytes), 'home-b holds the same 64 MiB')
  })

  it('behind a router that maps every destination to its own port, the connection stays relayed and still carries what home-c edits and pins', { timeout: 120_000 }, async () => {
    const relayed = await homeA.call('POST', '/p2p/connect', { addr: await circuitOf(homeC) })
    assert.equal(relayed.status, 200, JSON.stringify(relayed.body))
    // the side the relayed connection came in to offers its router's address and a port, but home-c's router sends
    // home-c's dial out from another port; after three tries the starter gives up (home-c may have dialled home-a
    // through the rack first, found in the DHT: then home-a started)
    const gaveUp = async (d: NsDaemon, other: NsDaemon): Promise<boolean> => {
      const last = (await status(d)).hole_punch.last
      return last?.peer === other.peerId && last.result === 'failed'
    }
    await waitFor(async () => await gaveUp(homeC, homeA) || await gaveUp(homeA, homeC), 60_000, 'the punch between home-a and home-c to be given up')
      .catch(async err => { throw new Error(`${String(err.message)}\n${await report()}`) })
    assert.equal(await pathTo(homeA, homeC), 'relayed')
    assert.equal(await pathTo(homeC, homeA), 'relayed')
    const listed = await homeA.cli(['peers'])
    assert.equal(listed.code, 0)
    assert.match(listed.stdout, new RegExp(`^${homeC.peerId}\\s+relayed\\s+linked`, 'm'))
    assert.match(listed.stdout, new RegExp(`^${homeB.peerId}\\s+direct\\s+linked`, 'm'))
    assert.match((await homeA.cli(['status'])).stdout, /^reachable {2}private: /m)

    // what home-c edits and pins still reaches the family: the document, and 4 MiB pinned at home-c, proven at
    // home-a and home-b, whose first copy can only have come from home-c through the relay
    const doc = await homeC.call('POST', '/docs', { note: 'from home-c' })
    assert.equal(doc.status, 201, JSON.stringify(doc.body))
    await waitFor(async () => (await homeA.call('GET', `/cache/docs/${String(doc.body.id)}`).catch(() => undefined))?.body?.value?.note === 'from home-c', 60_000, 'home-c\'s document at home-a')
    const file = join(dir.path, 'small.bin')
    const bytes = randomBytes(4 * MiB)
    writeFileSync(file, bytes)
    const added = await homeC.transfer('POST', '/blob?layer=sovereign', { upload: file })
    assert.equal(added.status, 201, JSON.stringify(added.body))
    const cid = String(added.body.cid)
    await waitFor(async () => {
      const own = (await homeC.call('GET', '/replication/status')).body.own.find((r: any) => r.cid === cid)
      return own?.state === 'ok' && own.holders.filter((h: any) => h.confirmed).length === 2
    }, 60_000, 'home-c\'s blob proven at home-a and home-b').catch(async err => {
      const atA = (await homeA.call('GET', '/replication/status')).body.roots?.filter((r: any) => r.cid === cid)
      const logs = homeA.output().split('\n').filter(l => /replication|blocks|pin/.test(l)).slice(-12).join('\n')
      throw new Error(`${String(err.message)}: ${JSON.stringify((await homeC.call('GET', '/replication/status')).body.own.find((r: any) => r.cid === cid))}\nat home-a: ${JSON.stringify(atA)}\n${logs}`)
    })
    const out = join(dir.path, 'small-at-a.bin')
    assert.equal((await homeA.transfer('GET', `/blob/${cid}`, { output: out })).status, 200)
    assert.ok(readFileSync(out).equals(bytes), 'home-a reads it whole')
    assert.equal(await pathTo(homeA, homeC), 'relayed')
  })
})

if (unavailable != null) console.log(`# nat.spec skipped: ${unavailable}`)
