import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createDeviceCertificate, createRelationship, generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import type { KeyPair } from '@hearth/trust'
import { libp2pPrivateKey } from '../src/identity.js'
import { spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

/**
 * A real daemon against a crowd of real libp2p peers that misbehave on every
 * protocol: length bombs, frames held half-sent, drips, junk, a thousand
 * streams, hundreds of fresh identities. The daemon's memory must stay within
 * its inbound budget plus a stated margin, /health must keep answering, and a
 * device of its own agent must still connect and sync a document.
 * `HEARTH_SOAK=1` runs the long version (more identities, more rounds).
 */
const SOAK = process.env.HEARTH_SOAK === '1'
const MiB = 1024 * 1024
const BUDGET = 32 * MiB
/** what the daemon may grow by beyond its budget: V8 and libp2p bookkeeping for a few hundred connections, SQLite's page cache, Fastify */
const MARGIN = 160 * MiB
const KNOWN = SOAK ? 64 : 16
const FLOOD = SOAK ? 2000 : 150

const PROTOCOLS = ['/hearth/sync/1.0.0', '/hearth/blocks/1.0.0', '/hearth/trust/1.0.0', '/hearth/pair/1.0.0', '/hearth/pins/1.0.0', '/hearth/proofs/1.0.0', '/hearth/kad/1.0.0', '/ipfs/id/1.0.0', '/ipfs/ping/1.0.0']

function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Uint8Array.from(out)
}

async function peer (key?: KeyPair): Promise<Libp2p> {
  return await createLibp2p({
    ...(key != null ? { privateKey: libp2pPrivateKey(key) } : {}),
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 10_000 },
    services: { identify: identify() }
  })
}

/** Sends `bytes` as fast as the stream takes them; false once the daemon cut the stream */
async function push (stream: Stream, bytes: Uint8Array): Promise<boolean> {
  const CHUNK = 64 * 1024
  for (let i = 0; i < bytes.length; i += CHUNK) {
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') return false
    try {
      if (!stream.send(bytes.subarray(i, i + CHUNK))) await stream.onDrain({ signal: AbortSignal.timeout(5000) })
    } catch {
      return false
    }
  }
  return stream.status === 'open'
}

/** Resolves in turn, at most eight a second over all callers: attackers connect as fast as libp2p's per-address rate limit lets them */
let nextSlot = 0
async function paced (): Promise<void> {
  const now = Date.now()
  nextSlot = Math.max(nextSlot, now) + 125
  await new Promise(resolve => setTimeout(resolve, nextSlot - 125 - now))
}

/** Connects `p` to the daemon in its turn; false when refused */
async function connect (p: Libp2p, target: Multiaddr): Promise<boolean> {
  await paced()
  try {
    await p.dial(target, { signal: AbortSignal.timeout(5000) })
    return true
  } catch {
    return false
  }
}

/** Opens `protocol` to the daemon; undefined when refused at negotiation */
async function open (p: Libp2p, target: Multiaddr, protocol: string): Promise<Stream | undefined> {
  try {
    return await p.dialProtocol(target, protocol, { signal: AbortSignal.timeout(5000) })
  } catch {
    return undefined
  }
}

function rssOf (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m == null ? 0 : Number(m[1]) * 1024
}

const post = async (d: DaemonProc, path: string, body?: unknown): Promise<any> => {
  const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })
  const json = await res.json()
  assert.ok(res.status < 300, `${path}: ${JSON.stringify(json)}`)
  return json
}

describe('a daemon among hostile peers', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let target: DaemonProc
  let own: DaemonProc
  const peers: Libp2p[] = []

  before(async () => {
    dir = await tempDir()
    target = await spawnDaemon(`${dir.path}/target`, { HEARTH_P2P_INBOUND_BUDGET: String(BUDGET), HEARTH_P2P_STRANGER_IDLE_MS: '5000' })
    own = await spawnDaemon(`${dir.path}/own`)
  })
  after(async () => {
    await Promise.all(peers.map(async p => { await Promise.resolve(p.stop()).catch(() => {}) }))
    await Promise.all([target?.kill('SIGKILL'), own?.kill('SIGKILL')])
    await dir?.remove()
  })

  it('keeps its memory within the inbound budget, answers /health, and still syncs with its own device', { timeout: SOAK ? 900_000 : 240_000 }, async () => {
    const status = (await target.get('/p2p/status')).body
    const addr = multiaddr(status.addresses.find((a: string) => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws')))
    await post(target, '/trust/init')
    // the daemon's own second device, paired before the attack (pairing is a stranger's protocol)
    const { invitation } = await post(target, '/trust/invites')
    await post(own, '/trust/join', { invitation, name: 'own device' })

    // peers the daemon knows: certified devices of an agent it has no link with, but that a
    // friend of its agent vouched for (a document's ACL could name it), so they get every
    // protocol and the known peers' share of the budget
    const friend = generateKeyPair()
    const rogueAgent = generateKeyPair()
    await post(target, '/trust/relationships', { agent: keyIdFromPublicKey(friend.publicKey), kind: 'friend' })
    const knownKeys = Array.from({ length: KNOWN }, () => generateKeyPair())
    const day = Date.now() + 86_400_000
    await post(target, '/trust/statements', {
      statements: [
        createRelationship(friend, { subject: rogueAgent.publicKey, kind: 'community', expiresAt: day }),
        ...knownKeys.map(k => createDeviceCertificate(rogueAgent, { device: k.publicKey, expiresAt: day }))
      ].map(st => Buffer.from(st.bytes).toString('base64'))
    })

    const pid = target.proc.pid!
    const baseline = rssOf(pid)
    let peak = baseline
    const health: number[] = []
    let healthFailures = 0
    let strangersSeen = 0
    let running = true
    const watcher = (async () => {
      while (running && target.proc.exitCode == null) {
        try { peak = Math.max(peak, rssOf(pid)) } catch { break }
        const t0 = performance.now()
        try {
          const res = await fetch(`${target.url}/health`, { signal: AbortSignal.timeout(10_000) })
          if (res.status !== 200) healthFailures++
          health.push(performance.now() - t0)
        } catch {
          healthFailures++
        }
        const limits = (await target.get('/p2p/status').catch(() => undefined))?.body?.limits
        if (limits != null) strangersSeen = Math.max(strangersSeen, limits.connections.stranger)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    })()

    // a drip: a frame of 100 bytes on the pairing protocol, one byte a second
    const dripper = await peer()
    peers.push(dripper)
    await connect(dripper, addr)
    const dripStream = await open(dripper, addr, '/hearth/pair/1.0.0')
    const drip = (async () => {
      const s = dripStream
      if (s == null) return 'refused'
      s.send(varint(100))
      for (let i = 0; i < 60; i++) {
        await new Promise(resolve => setTimeout(resolve, 1000))
        if (s.status !== 'open' || s.writeStatus !== 'writable') return `cut after ${i + 1} s`
        try { s.send(Uint8Array.of(0)) } catch { return `cut after ${i + 1} s` }
      }
      return 'never cut'
    })()
    // junk on every protocol, and a thousand streams on one connection
    await (async () => {
      const p = await peer()
      peers.push(p)
      await connect(p, addr)
      for (const protocol of PROTOCOLS) {
        const s = await open(p, addr, protocol)
        if (s != null) void push(s, randomBytes(4096))
      }
      const conn = p.getConnections()[0]
      if (conn != null) await Promise.all(Array.from({ length: 1000 }, async () => await conn.newStream('/ipfs/ping/1.0.0', { signal: AbortSignal.timeout(5000) }).catch(() => undefined)))
    })()
    const t0 = Date.now()
    const phases: Record<string, number> = {}
    const attacks: Array<Promise<unknown>> = []
    // 1. length bombs from known peers: two sync streams each, announcing 8 MiB and 8 MiB - 1, sending all but the last byte, then holding
    for (const key of knownKeys) {
      attacks.push((async () => {
        const p = await peer(key)
        peers.push(p)
        if (!await connect(p, addr)) return
        for (const n of [8 * MiB, 8 * MiB - 1]) {
          const s = await open(p, addr, '/hearth/sync/1.0.0')
          if (s == null) continue
          const frame = new Uint8Array(varint(n).length + n - 1)
          frame.set(varint(n))
          void push(s, frame)
        }
      })())
    }
    // 2. block-request bombs from strangers: 32 streams each announcing 2 MiB
    for (let i = 0; i < 20; i++) {
      attacks.push((async () => {
        const p = await peer()
        peers.push(p)
        if (!await connect(p, addr)) return
        await Promise.all(Array.from({ length: 32 }, async () => {
          const s = await open(p, addr, '/hearth/blocks/1.0.0')
          if (s != null) void push(s, new Uint8Array([...varint(2 * MiB), ...randomBytes(256 * 1024)]))
        }))
      })())
    }
    // 5. a flood of fresh identities, eight a second in waves
    const flood = (async () => {
      let connected = 0
      for (let wave = 0; wave < FLOOD / 50; wave++) {
        const results = await Promise.all(Array.from({ length: 50 }, async () => {
          const p = await peer()
          peers.push(p)
          return await connect(p, addr)
        }))
        connected += results.filter(Boolean).length
      }
      return connected
    })()
    await Promise.all(attacks)
    phases.attacks_s = (Date.now() - t0) / 1000

    // meanwhile the daemon's own device connects and gets a new document
    await post(own, '/p2p/connect', { addr: addr.toString() })
    const doc = await post(target, '/docs', { note: 'written under attack' })
    await waitFor(async () => (await fetch(`${own.url}/docs/${doc.id}/info`, { headers: { authorization: `Bearer ${own.token}` } }).catch(() => undefined))?.status === 200, 60_000, 'the document to reach the own device')
      .catch(async err => {
        const view = async (d: DaemonProc): Promise<string> => {
          const st = (await d.get('/p2p/status')).body
          return JSON.stringify({ peers: st.peers.filter((x: any) => x.class !== 'stranger').map((x: any) => [x.peer_id.slice(-5), x.class, x.path]), sessions: st.sync.sessions.map((x: any) => ({ peer: x.peer_id.slice(-5), sub: x.subscribed, psub: x.peer_subscribed, pending: x.pending, in_flight: x.in_flight, sent: x.sent_messages, recv: x.received_messages })), limits: st.limits })
        }
        throw new Error(`${String(err.message)}\ntarget ${await view(target)}\nown ${await view(own)}\n${target.output().split('\n').filter(l => /sync|warn|error/i.test(l)).slice(-10).join('\n')}`)
      })

    phases.synced_s = (Date.now() - t0) / 1000
    const dripResult = await drip
    phases.drip_s = (Date.now() - t0) / 1000
    const floodConnected = await flood
    phases.flood_s = (Date.now() - t0) / 1000
    running = false
    await watcher
    const after = (await target.get('/p2p/status')).body
    const rssAfter = rssOf(pid)
    const sorted = [...health].sort((a, b) => a - b)
    const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? 0
    console.log(JSON.stringify({
      known_bombers: KNOWN,
      flood: FLOOD,
      flood_connected: floodConnected,
      rss_baseline_mb: Math.round(baseline / MiB),
      rss_peak_mb: Math.round(peak / MiB),
      rss_after_mb: Math.round(rssAfter / MiB),
      budget_mb: BUDGET / MiB,
      health_polls: health.length,
      health_p50_ms: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
      health_p99_ms: Math.round(p99),
      health_failures: healthFailures,
      strangers_peak: strangersSeen,
      drip: dripResult,
      phases,
      limits: after.limits
    }))

    assert.ok(after.limits.connections.known >= 1, 'the bombers were known peers, given the sync protocol')
    assert.ok(peak - baseline <= BUDGET + MARGIN, `RSS grew ${Math.round((peak - baseline) / MiB)} MiB: more than the ${BUDGET / MiB} MiB budget and a ${MARGIN / MiB} MiB margin`)
    assert.equal(healthFailures, 0, '/health answered every poll')
    assert.match(dripResult, /^cut after/, 'the dripping frame was cut')
    assert.ok(strangersSeen <= 64, `strangers held ${strangersSeen} connections, more than HEARTH_P2P_MAX_STRANGERS`)
    assert.ok(after.limits.budget.refused >= 1, 'frames beyond the budget were refused')
    assert.ok(after.limits.frames_timed_out >= 1)
    assert.ok(after.limits.connections_refused >= 1)
    assert.ok(after.limits.addresses_banned >= 1, 'the address whose strangers kept being banned was refused to new ones')
    const metrics = await (await fetch(`${target.url}/metrics`)).text()
    assert.match(metrics, /hearth_p2p_refusals_total\{what="frame_timed_out"\} [1-9]/)

    // once they leave, what they held is given back
    await Promise.all(peers.splice(0).map(async p => { await Promise.resolve(p.stop()).catch(() => {}) }))
    await waitFor(async () => (await target.get('/p2p/status')).body.limits.budget.used_bytes === 0, 20_000, 'the budget to be released')
  })
})
