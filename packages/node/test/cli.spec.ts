import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { spawn } from 'node:child_process'
import { BIN, cleanEnv, closedPort, runCli, runCliWithInput, spawnDaemon, tempDir, waitFor } from './helpers.js'
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
    for (const c of ['init', 'daemon', 'id', 'status', 'peers', 'add', 'cat', 'pin', 'storage', 'doc']) assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'))
    for (const c of ['init', 'daemon', 'id', 'status', 'peers', 'add', 'cat', 'pin', 'storage', 'doc']) {
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
    assert.match(list.stdout, new RegExp(`^${b.peerId}\\s+direct\\s+\\w+\\s+outbound`, 'm'))
    const off = await runCli(['peers', 'disconnect', b.peerId], envFor(a))
    assert.equal(off.code, 0, off.stderr)

    const noToken = await runCli(['peers', 'connect', bAddr, '--token', 'wrong-token-0123456789'], envFor(a))
    assert.equal(noToken.code, 1)
    assert.match(noToken.stderr, /token/)
    const bad = await runCli(['peers', 'connect', 'not-a-multiaddr'], envFor(a))
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /not a valid multiaddr/)
  })

  it('adds, cats, pins and reports storage', async () => {
    const file = join(dir.path, 'photo.png')
    const bytes = randomBytes(2 * 1024 * 1024 + 17)
    await writeFile(file, bytes)
    const added = await runCli(['add', file, '--layer', 'reciprocal', '--json'], envFor(a))
    assert.equal(added.code, 0, added.stderr)
    const { cid, size, layer } = JSON.parse(added.stdout)
    assert.equal(size, bytes.length)
    assert.equal(layer, 'reciprocal')
    const info = (await a.get(`/blob/${cid}/info`)).body
    assert.equal(info.content_type, 'image/png', 'the type is guessed from the file name')

    const out = join(dir.path, 'out.bin')
    const cat = await runCli(['cat', cid, '-o', out], envFor(a))
    assert.equal(cat.code, 0, cat.stderr)
    assert.ok((await readFile(out)).equals(bytes))
    const part = await runCli(['cat', cid, '--range', '1048570-1048579', '-o', out], envFor(a))
    assert.equal(part.code, 0)
    assert.ok((await readFile(out)).equals(bytes.subarray(1048570, 1048580)))

    // --only-hash needs no daemon and gives the CID the add gives, on the hash threads from 4 MiB up
    const offline = cleanEnv({ HEARTH_DATA: join(dir.path, 'nobody') })
    const hashed = await runCli(['add', '--only-hash', '--json', file], offline)
    assert.equal(hashed.code, 0, hashed.stderr)
    assert.deepEqual(JSON.parse(hashed.stdout), { cid, size: bytes.length })
    const big = join(dir.path, 'big.bin')
    await writeFile(big, randomBytes(9 * 1024 * 1024 + 3))
    const bigAdded = JSON.parse((await runCli(['add', big, '--json'], envFor(a))).stdout)
    assert.equal((await runCli(['add', '-n', '-q', big], offline)).stdout.trim(), bigAdded.cid)
    assert.equal((await runCliWithInput(['add', '-n', '-q', '-'], offline, Buffer.from('from stdin'))).stdout.trim(),
      (await runCliWithInput(['add', '-', '-q'], envFor(a), Buffer.from('from stdin'))).stdout.trim())

    const stdin = await runCliWithInput(['add', '-', '--quiet', '--layer', 'gift'], envFor(a), Buffer.from('from stdin'))
    assert.equal(stdin.code, 0, stdin.stderr)
    const stdinCid = stdin.stdout.trim()
    assert.equal((await runCli(['cat', stdinCid], envFor(a))).stdout, 'from stdin')

    assert.equal((await runCli(['pin', 'add', stdinCid, '--layer', 'invested'], envFor(a))).code, 0)
    const ls = await runCli(['pin', 'ls', '--layer', 'invested'], envFor(a))
    assert.match(ls.stdout, new RegExp(`^${stdinCid}\\s+invested`, 'm'))
    assert.match((await runCli(['pin', 'rm', stdinCid, '--layer', 'invested'], envFor(a))).stdout, /removed 1 pin/)
    const storage = await runCli(['storage'], envFor(a))
    assert.equal(storage.code, 0)
    assert.match(storage.stdout, /^reciprocal\s+2\.0 MiB\s+unlimited/m)
    assert.match(storage.stdout, /^sovereign\s+9\.0 MiB\s+/m)
    assert.match(storage.stdout, /^cache\s+.*1\.0 GiB/m)

    const missing = await runCli(['cat', 'bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4'], envFor(a))
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /not here, and no peer offers it/)
    const badLayer = await runCli(['add', file, '--layer', 'attic'], envFor(a))
    assert.equal(badLayer.code, 2)
    const noFile = await runCli(['add', join(dir.path, 'nope')], envFor(a))
    assert.equal(noFile.code, 1)
    assert.match(noFile.stderr, /ENOENT/)
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
  it('creates, shows, patches, lists, watches and exports documents', async () => {
    const env = envFor(b)
    const noAgent = await runCli(['doc', 'new', '--content', '{"a":1}'], env)
    assert.equal(noAgent.code, 1)
    assert.match(noAgent.stderr, /trust init/)
    assert.equal((await runCli(['trust', 'init'], env)).code, 0)
    const made = await runCli(['doc', 'new', '--content', '{"title":"notes","tags":["x"]}'], env)
    assert.equal(made.code, 0, made.stderr)
    const url = made.stdout.trim()
    assert.match(url, /^automerge:[1-9A-HJ-NP-Za-km-z]+$/)
    assert.deepEqual(JSON.parse((await runCli(['doc', 'show', url], env)).stdout), { title: 'notes', tags: ['x'] })

    const watcher = spawn(process.execPath, [BIN, 'doc', 'watch', url, '--value', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let seen = ''
    watcher.stdout.on('data', d => { seen += String(d) })
    try {
      await waitFor(() => seen.includes('"origin":"initial"'), 10_000, 'the first state')
      const patched = await runCli(['doc', 'patch', url, '{"title":"todo","tags":null}'], env)
      assert.equal(patched.code, 0, patched.stderr)
      await waitFor(() => seen.includes('"title":"todo"'), 10_000, 'the patched state in watch')
    } finally {
      watcher.kill('SIGINT')
    }
    assert.deepEqual(JSON.parse((await runCli(['doc', 'show', url], env)).stdout), { title: 'todo' })
    assert.match((await runCli(['doc', 'ls'], env)).stdout, new RegExp(url))
    const file = join(dir.path, 'notes.automerge')
    assert.equal((await runCli(['doc', 'export', url, '-o', file], env)).code, 0)
    assert.ok((await readFile(file)).length > 50)
    const bad = await runCli(['doc', 'patch', url, '[1]'], env)
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /merge patch must be a JSON object|ERR_VALIDATION|must be object/)
    const usage = await runCli(['doc', 'show'], env)
    assert.equal(usage.code, 2)
  })
})
