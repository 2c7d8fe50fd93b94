import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cleanEnv, closedPort, runCli, spawnDaemon, tempDir } from './helpers.js'
import type { DaemonProc } from './helpers.js'

describe('hearth CLI', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let a: DaemonProc
  let b: DaemonProc
  before(async () => {
    dir = await tempDir()
    ;[a, b] = await Promise.all([spawnDaemon(join(dir.path, 'a')), spawnDaemon(join(dir.path, 'b'))])
  })
  after(async () => {
    await Promise.all([a?.kill('SIGKILL'), b?.kill('SIGKILL')])
    await dir.remove()
  })
  const envFor = (d: DaemonProc): Record<string, string> => cleanEnv({ HEARTH_DATA: d.dataDir })

  it('prints usage for --help on every command', async () => {
    const top = await runCli(['--help'], cleanEnv())
    assert.equal(top.code, 0)
    for (const c of ['init', 'daemon', 'id', 'status', 'peers']) assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'))
    for (const c of ['init', 'daemon', 'id', 'status', 'peers']) {
      const r = await runCli([c, '--help'], cleanEnv())
      assert.equal(r.code, 0, c)
      assert.match(r.stdout, new RegExp(`^usage: hearth ${c}`), c)
    }
    const daemonHelp = await runCli(['daemon', '--help'], cleanEnv())
    for (const name of ['P2P_PORT', 'ENABLE_P2P', 'DISABLE_MDNS', 'HEARTH_HTTP_HOST', 'HEARTH_BOOTSTRAP', 'HEARTH_LABELS', 'HEARTH_API_TOKEN', 'HEARTH_LOG_LEVEL', 'HEARTH_DATA']) {
      assert.ok(daemonHelp.stdout.includes(name), name)
    }
    const unknown = await runCli(['frobnicate'], cleanEnv())
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown command "frobnicate"/)
  })

  it('shows status, id and peers of the running daemon', async () => {
    const status = await runCli(['status'], envFor(a))
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /ready\s+yes/)
    assert.ok(status.stdout.includes(a.peerId))
    const json = JSON.parse((await runCli(['status', '--json'], envFor(a))).stdout)
    assert.equal(json.p2p.peer_id, a.peerId)
    assert.equal(json.ready.ready, true)

    const id = await runCli(['id'], envFor(a))
    assert.equal(id.code, 0)
    assert.equal(id.stdout.split('\n')[0], a.peerId)
    assert.match(id.stdout, /\/ip4\/127\.0\.0\.1\/tcp\//)

    const none = await runCli(['peers'], envFor(a))
    assert.equal(none.code, 0)
    assert.match(none.stdout, /no peers connected/)
  })

  it('connects and disconnects peers with the token from the data folder', async () => {
    const bAddr = (await b.get('/p2p/status')).body.addresses.find((x: string) => x.startsWith('/ip4/127.0.0.1/tcp/') && !x.includes('/ws'))
    const connect = await runCli(['peers', 'connect', bAddr], envFor(a))
    assert.equal(connect.code, 0, connect.stderr)
    assert.match(connect.stdout, new RegExp(`connected to ${b.peerId}`))
    const list = await runCli(['peers'], envFor(a))
    assert.ok(list.stdout.includes(b.peerId))
    const off = await runCli(['peers', 'disconnect', b.peerId], envFor(a))
    assert.equal(off.code, 0, off.stderr)

    const noToken = await runCli(['peers', 'connect', bAddr, '--token', 'wrong-token-0123456789'], envFor(a))
    assert.equal(noToken.code, 1)
    assert.match(noToken.stderr, /token/)
    const bad = await runCli(['peers', 'connect', 'not-a-multiaddr'], envFor(a))
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /not a valid multiaddr/)
  })

  it('says clearly when no daemon runs, and exits 3', async () => {
    const port = await closedPort()
    const env = cleanEnv({ HEARTH_DATA: join(dir.path, 'nobody'), HEARTH_API_URL: `http://127.0.0.1:${port}` })
    for (const cmd of [['status'], ['peers'], ['peers', 'connect', '/ip4/127.0.0.1/tcp/1']]) {
      const r = await runCli(cmd, env)
      assert.equal(r.code, 3, cmd.join(' '))
      assert.ok(r.stderr.includes(`no Hearth daemon answers at http://127.0.0.1:${port} (ECONNREFUSED)`), r.stderr)
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace')
    }
  })

  it('initialises a data folder and reads the PeerId offline', async () => {
    const data = join(dir.path, 'fresh')
    const env = cleanEnv({ HEARTH_DATA: data, HEARTH_API_URL: `http://127.0.0.1:${await closedPort()}` })
    const first = JSON.parse((await runCli(['init', '--json'], env)).stdout)
    assert.equal(first.created, true)
    const again = JSON.parse((await runCli(['init', '--json'], env)).stdout)
    assert.equal(again.created, false)
    assert.equal(again.peer_id, first.peer_id)
    const id = await runCli(['id'], env)
    assert.equal(id.code, 0)
    assert.equal(id.stdout.split('\n')[0], first.peer_id)
    const missing = await runCli(['id'], cleanEnv({ HEARTH_DATA: join(dir.path, 'empty'), HEARTH_API_URL: `http://127.0.0.1:${await closedPort()}` }))
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /hearth init/)
  })
})
