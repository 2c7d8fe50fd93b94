import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../src/index.js'
import { startDnsServer } from './dns-server.js'
import type { TestDnsServer } from './dns-server.js'
import { closedPort, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

describe('DNS bootstrap (HEARTH_BOOTSTRAP_DNS)', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let dns: TestDnsServer
  const daemons: DaemonProc[] = []
  before(async () => {
    dir = await tempDir()
    dns = await startDnsServer()
  })
  after(async () => {
    await Promise.all(daemons.map(async d => await d.kill('SIGKILL')))
    await dns.close()
    await dir.remove()
  })

  it('validates its settings', () => {
    const base = { HEARTH_DATA: dir.path, HEARTH_BOOTSTRAP_DNS: 'hearth-p2p.default.svc.cluster.local' }
    const c = loadConfig({ env: { ...base, HEARTH_DNS_SERVERS: '10.96.0.10,127.0.0.1:5353,[::1]:53' } })
    assert.equal(c.bootstrapDns, 'hearth-p2p.default.svc.cluster.local')
    assert.deepEqual(c.dnsServers, ['10.96.0.10', '127.0.0.1:5353', '[::1]:53'])
    assert.equal(c.bootstrapDnsIntervalMs, 30_000)
    assert.throws(() => loadConfig({ env: { ...base, P2P_PORT: '0' } }), (e: any) => e.key === 'HEARTH_BOOTSTRAP_DNS')
    assert.throws(() => loadConfig({ env: { ...base, HEARTH_DNS_SERVERS: 'dns.example' } }), (e: any) => e.key === 'HEARTH_DNS_SERVERS')
    assert.throws(() => loadConfig({ env: { ...base, HEARTH_BOOTSTRAP_DNS: 'not a name' } }), (e: any) => e.key === 'HEARTH_BOOTSTRAP_DNS')
  })

  it('lets the pods of a set find each other through one name, as in a StatefulSet', async () => {
    // three "pods" on distinct loopback addresses, all on the same P2P port,
    // like pods behind a headless service
    const port = await closedPort()
    const ips = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
    dns.records.set('hearth-p2p.test.svc', ips.slice(0, 2))
    const env = (ip: string): Record<string, string> => ({
      HEARTH_P2P_HOST: ip,
      P2P_PORT: String(port),
      HEARTH_BOOTSTRAP_DNS: 'hearth-p2p.test.svc',
      HEARTH_DNS_SERVERS: `127.0.0.1:${dns.port}`,
      HEARTH_BOOTSTRAP_DNS_INTERVAL_MS: '1000',
      // (the WebSocket listener would take P2P_PORT + 1, which nothing reserved)
      HEARTH_P2P_WS_PORT: '0'
    })
    const [a, b] = await Promise.all(ips.slice(0, 2).map(async (ip, i) => await spawnDaemon(join(dir.path, `pod-${i}`), env(ip))))
    daemons.push(a, b)
    const peersOf = async (d: DaemonProc): Promise<string[]> => (await d.get('/p2p/status')).body.peers.map((p: any) => p.peer_id)
    await waitFor(async () => (await peersOf(a)).includes(b.peerId) && (await peersOf(b)).includes(a.peerId), 20_000, 'a and b to connect')

    const status = (await a.get('/p2p/status')).body.bootstrap
    assert.equal(status.dns.name, 'hearth-p2p.test.svc')
    assert.deepEqual(status.dns.addresses, [`/ip4/127.0.0.3/tcp/${port}`], 'its own address is left out')
    assert.deepEqual(status.discovered, [`/ip4/127.0.0.3/tcp/${port}`])
    assert.equal(status.dns.last_error, null)

    // the set scales up: the new pod's record appears and the others dial it
    dns.records.set('hearth-p2p.test.svc', ips)
    const c = await spawnDaemon(join(dir.path, 'pod-2'), env(ips[2]))
    daemons.push(c)
    await waitFor(async () => (await peersOf(a)).includes(c.peerId) && (await peersOf(b)).includes(c.peerId), 20_000, 'the new pod to be found')
    assert.ok(dns.queries > 3, 'the name is resolved again periodically')
  })

  it('reports a lookup failure and keeps running', async () => {
    const d = await spawnDaemon(join(dir.path, 'nx'), {
      P2P_PORT: String(await closedPort()),
      HEARTH_P2P_WS_PORT: '0',
      HEARTH_BOOTSTRAP_DNS: 'missing.test.svc',
      HEARTH_DNS_SERVERS: `127.0.0.1:${dns.port}`
    })
    daemons.push(d)
    const s = await waitFor(async () => {
      const b = (await d.get('/p2p/status')).body.bootstrap
      return b.dns.last_error != null ? b : undefined
    }, 10_000, 'the lookup error')
    assert.match(s.dns.last_error, /missing\.test\.svc/)
    assert.equal((await d.get('/ready')).status, 200)
  })
})
