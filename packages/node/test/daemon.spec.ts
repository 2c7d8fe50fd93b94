import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { handleSignals, silentLogger } from '../src/index.js'
import type { RunningDaemon } from '../src/index.js'
import { cleanEnv, runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

const tcpAddr = (d: DaemonProc, status: any): string =>
  status.addresses.find((a: string) => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))

describe('daemon process', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const running: DaemonProc[] = []
  before(async () => { dir = await tempDir() })
  after(async () => {
    await Promise.all(running.map(async d => await d.kill('SIGKILL')))
    await dir.remove()
  })
  async function start (name: string, env: Record<string, string> = {}): Promise<DaemonProc> {
    const d = await spawnDaemon(join(dir.path, name), env)
    running.push(d)
    return d
  }

  it('keeps its PeerId across restarts and stops cleanly on SIGTERM', async () => {
    const data = join(dir.path, 'restart')
    const first = await start('restart')
    assert.equal((await stat(data)).mode & 0o777, 0o700)
    assert.equal((await stat(join(data, 'keys', 'device.key'))).mode & 0o777, 0o600)
    assert.equal((await stat(join(data, 'api-token'))).mode & 0o777, 0o600)
    assert.ok(existsSync(join(data, 'api.json')))
    const status = await first.get('/p2p/status')
    assert.equal(status.body.peer_id, first.peerId)

    const exit = await first.kill('SIGTERM')
    assert.equal(exit.code, 0, first.output())
    assert.ok(exit.ms < 10_000, `stopped in ${exit.ms} ms, the bound is 10 s`)
    assert.equal(existsSync(join(data, 'api.json')), false, 'api.json is removed on a clean exit')
    assert.match(first.output(), /"msg":"stopped"/)

    const second = await start('restart')
    assert.equal(second.peerId, first.peerId)
    assert.equal((await second.get('/p2p/status')).body.peer_id, first.peerId)
    const exit2 = await second.kill('SIGINT')
    assert.equal(exit2.code, 0)
  })

  it('refuses a second daemon on the same data folder', async () => {
    const d = await start('twice')
    await assert.rejects(spawnDaemon(d.dataDir), /already runs on this data folder/)
    assert.equal((await d.get('/health')).status, 200, 'the first one keeps running')
  })

  it('names the setting to change, in one line, when the libp2p port is taken', async () => {
    const holder = createServer()
    await new Promise<void>(resolve => holder.listen(0, '127.0.0.1', resolve))
    try {
      const port = String((holder.address() as AddressInfo).port)
      const env = cleanEnv({ HEARTH_DATA: join(dir.path, 'port-taken'), HEARTH_HTTP_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true' })
      const tcp = await runCli(['daemon'], { ...env, P2P_PORT: port, HEARTH_P2P_WS_PORT: '0' })
      assert.equal(tcp.code, 1)
      assert.match(tcp.stderr, new RegExp(`hearth: the libp2p TCP port ${port} on 127\\.0\\.0\\.1 \\(P2P_PORT\\) is taken`))
      assert.doesNotMatch(tcp.stderr, /^\s+at /m, 'no stack trace')
      assert.doesNotMatch(tcp.stderr, /UnsupportedListenAddressesError/)
      const ws = await runCli(['daemon'], { ...env, P2P_PORT: '0', HEARTH_P2P_WS_PORT: port })
      assert.equal(ws.code, 1)
      assert.match(ws.stderr, new RegExp(`the libp2p WebSocket port ${port} on 127\\.0\\.0\\.1 \\(HEARTH_P2P_WS_PORT\\) is taken`))
    } finally {
      holder.close()
    }
  })

  it('starts after a crash left a stale api.json', async () => {
    const d = await start('stale')
    await d.kill('SIGKILL')
    assert.ok(existsSync(join(d.dataDir, 'api.json')))
    const again = await start('stale')
    assert.equal(again.peerId, d.peerId)
  })

  it('connects two daemons through HEARTH_BOOTSTRAP and redials when the peer comes back', async () => {
    const a = await start('boot-a')
    const aStatus = (await a.get('/p2p/status')).body
    const aTcp = tcpAddr(a, aStatus)
    // without the /p2p/ part: the PeerId is learned from the handshake
    const bareAddr = aTcp.replace(/\/p2p\/.*$/, '')
    const b = await start('boot-b', { HEARTH_BOOTSTRAP: bareAddr })

    const lists = async (x: DaemonProc, y: DaemonProc): Promise<boolean> =>
      (await x.get('/p2p/status')).body.peers.some((p: any) => p.peer_id === y.peerId)
    await waitFor(async () => await lists(b, a), 15_000, 'B to list A')
    await waitFor(async () => await lists(a, b), 15_000, 'A to list B')
    const bs = (await b.get('/p2p/status')).body.bootstrap
    assert.deepEqual(bs.configured, [bareAddr])
    assert.deepEqual(bs.connected, [{ addr: bareAddr, peer_id: a.peerId }])
    const peerOnA = (await a.get('/p2p/status')).body.peers.find((p: any) => p.peer_id === b.peerId)
    assert.equal(peerOnA.direction, 'inbound')

    // A goes away and comes back on the same port: B must find it again by itself
    const port = bareAddr.split('/')[4]
    await a.kill('SIGKILL')
    await waitFor(async () => !(await lists(b, a)), 15_000, 'B to notice A is gone')
    const a2 = await start('boot-a', { P2P_PORT: port })
    assert.equal(a2.peerId, a.peerId)
    await waitFor(async () => await lists(b, a2), 20_000, 'B to redial A')
    assert.equal((await b.get('/p2p/status')).body.bootstrap.connected.length, 1)
  })

  it('finds another daemon on the LAN by mDNS', async () => {
    const a = await start('mdns-a', { DISABLE_MDNS: 'false' })
    const b = await start('mdns-b', { DISABLE_MDNS: 'false' })
    await waitFor(async () => (await a.get('/p2p/status')).body.peers.some((p: any) => p.peer_id === b.peerId), 25_000, 'A to find B by mDNS')
    await waitFor(async () => (await b.get('/p2p/status')).body.peers.some((p: any) => p.peer_id === a.peerId), 25_000, 'B to find A by mDNS')
    assert.equal((await a.get('/p2p/status')).body.mdns, true)
  })

  it('runs local-only with ENABLE_P2P=false', async () => {
    const d = await start('local', { ENABLE_P2P: 'false' })
    const s = (await d.get('/p2p/status')).body
    assert.equal(s.enabled, false)
    assert.deepEqual(s.addresses, [])
    assert.deepEqual((await d.get('/ready')).body.checks, { store: true, blobs: true, p2p: 'disabled', disk: 'ok' })
  })
})

describe('signal handling', () => {
  it('exits 1 when the graceful stop overruns its bound, and 130 on a second signal', async () => {
    const codes: number[] = []
    const hanging = { stop: async () => await new Promise<void>(() => {}) } as unknown as RunningDaemon
    const before = new Set(process.listeners('SIGTERM'))
    handleSignals(hanging, silentLogger.forComponent('test'), 200, code => { codes.push(code) })
    const added = process.listeners('SIGTERM').filter(l => !before.has(l))
    try {
      process.emit('SIGTERM')
      await new Promise(resolve => setTimeout(resolve, 400))
      assert.deepEqual(codes, [1])
      process.emit('SIGINT')
      assert.deepEqual(codes, [1, 130])
    } finally {
      for (const l of added) { process.removeListener('SIGTERM', l); process.removeListener('SIGINT', l) }
    }
  })

  it('exits 0 once a graceful stop completes', async () => {
    const codes: number[] = []
    let stopped = false
    const daemon = { stop: async () => { stopped = true } } as unknown as RunningDaemon
    const before = new Set(process.listeners('SIGTERM'))
    handleSignals(daemon, silentLogger.forComponent('test'), 5000, code => { codes.push(code) })
    const added = process.listeners('SIGTERM').filter(l => !before.has(l))
    try {
      process.emit('SIGTERM')
      await waitFor(() => codes.length > 0, 2000, 'exit')
      assert.equal(stopped, true)
      assert.deepEqual(codes, [0])
    } finally {
      for (const l of added) { process.removeListener('SIGTERM', l); process.removeListener('SIGINT', l) }
    }
  })
})
