import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { spawn } from 'node:child_process'
import { BIN, cleanEnv, closedPort, runCli, runCliWithInput, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

/** Runs a command to its end, collecting its output */
async function run (cmd: string, args: string[], opts: { cwd: string, env: Record<string, string> }): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  const code = await new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
  return { code, stdout, stderr }
}

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
    for (const c of ['init', 'daemon', 'id', 'status', 'peers', 'add', 'cat', 'pin', 'storage', 'doc', 'version', 'config', 'gc']) {
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
    const tail = await runCli(['cat', cid, '--range', '-100', '-o', out], envFor(a))
    assert.equal(tail.code, 0, tail.stderr)
    assert.ok((await readFile(out)).equals(bytes.subarray(bytes.length - 100)))
    const backwards = await runCli(['cat', cid, '--range', '1023-0'], envFor(a))
    assert.equal(backwards.code, 2)
    assert.equal(backwards.stdout, '', 'nothing written for a range that ends before it starts')
    // --json: the failure is JSON on standard output too
    const absent = await runCli(['cat', 'not-a-cid', '--json'], envFor(a))
    assert.notEqual(absent.code, 0)
    const failure = JSON.parse(absent.stdout)
    assert.match(failure.error, /^ERR_[A-Z_]+$/)
    assert.equal(failure.exit_code, absent.code)
    assert.equal(typeof failure.message, 'string')

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

  it('asks only the daemon of the data folder it names, never another on the port', async () => {
    // daemon a runs; each folder below names a's URL one way or another, and none is a's
    const url = (JSON.parse(await readFile(join(a.dataDir, 'api.json'), 'utf8')) as { url: string }).url
    const stopped = join(dir.path, 'stopped')
    const init = JSON.parse((await runCli(['init', '--json'], cleanEnv({ HEARTH_DATA: stopped }))).stdout)
    const noInfo = await runCli(['status'], cleanEnv({ HEARTH_DATA: stopped }))
    assert.equal(noInfo.code, 3, noInfo.stdout)
    assert.ok(noInfo.stderr.includes(`no daemon running on ${stopped}`), noInfo.stderr)
    assert.ok(!noInfo.stdout.includes(a.peerId))

    // the folder's daemon crashed and left its api.json naming a's port
    const gone = spawn(process.execPath, ['-e', ''])
    await new Promise(resolve => gone.on('exit', resolve))
    await writeFile(join(stopped, 'api.json'), JSON.stringify({ url, pid: gone.pid, peer_id: init.peer_id }))
    const stale = await runCli(['status', '--json'], cleanEnv({ HEARTH_DATA: stopped }))
    assert.equal(stale.code, 3, stale.stdout)
    assert.match(stale.stderr, new RegExp(`pid ${gone.pid}, which has exited`))
    // id still answers, from the key in the folder
    const id = await runCli(['id'], cleanEnv({ HEARTH_DATA: stopped }))
    assert.equal(id.code, 0, id.stderr)
    assert.equal(id.stdout.split('\n')[0], init.peer_id)

    // a live process holds the pid, but the daemon on the port is another one
    await writeFile(join(stopped, 'api.json'), JSON.stringify({ url, pid: process.pid, peer_id: init.peer_id }))
    for (const cmd of [['status'], ['cat', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy']]) {
      const other = await runCli(cmd, cleanEnv({ HEARTH_DATA: stopped }))
      assert.equal(other.code, 3, `${cmd[0]}: ${other.stdout}`)
      assert.ok(other.stderr.includes(`is ${a.peerId}, not ${init.peer_id}`), other.stderr)
    }
    // with no folder named, the default port's daemon is fine to ask
    assert.equal((await runCli(['status'], cleanEnv({ HEARTH_API_URL: url }))).code, 0)
  })

  it('prints the versions and the settings the daemon runs with, the token redacted', async () => {
    const v = JSON.parse((await runCli(['version', '--json'], envFor(a))).stdout)
    assert.equal(v.daemon, v.cli)
    assert.match(v.cli, /^\d+\.\d+\.\d+/)
    const offlineVersion = JSON.parse((await runCli(['version', '--json'], cleanEnv({ HEARTH_DATA: join(dir.path, 'nobody') }))).stdout)
    assert.equal(offlineVersion.daemon, null)

    const shown = JSON.parse((await runCli(['config', '--json'], envFor(a))).stdout)
    assert.equal(shown.running, true)
    const row = (key: string): { value: unknown, source: string } => shown.settings.find((r: { key: string }) => r.key === key)
    assert.deepEqual(row('data'), { key: 'data', env: 'HEARTH_DATA', flag: '--data', value: a.dataDir, source: 'env' })
    assert.equal(row('disable_mdns').value, true)
    assert.equal(row('disable_mdns').source, 'env')
    assert.equal(row('shutdown_timeout_ms').source, 'default')
    const text = await runCli(['config'], envFor(a))
    assert.match(text.stdout, /^p2p_host\s+"127\.0\.0\.1"\s+\(env\)$/m)

    // an admin read: a read token is refused, and no token at all even on loopback
    const readToken = JSON.parse((await runCli(['token', 'create', '--name', 'reader', '--scope', 'read', '--json'], envFor(a))).stdout).token
    const forbidden = await runCli(['config', '--token', readToken], envFor(a))
    assert.equal(forbidden.code, 1)
    assert.match(forbidden.stderr, /scope|admin/)
    const url = (JSON.parse(await readFile(join(a.dataDir, 'api.json'), 'utf8')) as { url: string }).url
    assert.equal((await fetch(`${url}/config`)).status, 401)

    // with no daemon: what one started here would use; a secret shows only as set
    const secret = 'a-secret-token-0123456789abcdef'
    const local = await runCli(['config', '--json'], cleanEnv({ HEARTH_DATA: join(dir.path, 'nobody'), HEARTH_API_TOKEN: secret, HEARTH_HTTP_PORT: '9999' }))
    assert.equal(local.code, 0, local.stderr)
    assert.ok(!local.stdout.includes(secret), 'the token was printed')
    const offline = JSON.parse(local.stdout)
    assert.equal(offline.running, false)
    assert.deepEqual(offline.settings.find((r: { key: string }) => r.key === 'api_token').value, '(set)')
    assert.deepEqual(offline.settings.find((r: { key: string }) => r.key === 'http_port').value, 9999)
  })

  it('links hearth onto PATH, and the README\'s redirections write only the bytes', async () => {
    const root = fileURLToPath(new URL('../../../../', import.meta.url))
    const bin = join(dir.path, 'bin')
    const linked = await run(process.execPath, [join(root, 'scripts', 'link-cli.mjs'), '--dir', bin], { cwd: root, env: cleanEnv() })
    assert.equal(linked.code, 0, linked.stderr)
    assert.match(linked.stdout, /is not on PATH/)
    const bytes = randomBytes(300_000)
    const file = join(dir.path, 'redirect.bin')
    await writeFile(file, bytes)
    const { cid } = JSON.parse((await runCli(['add', file, '--json'], envFor(a))).stdout)
    const env = cleanEnv({ HEARTH_DATA: a.dataDir, PATH: `${bin}:${process.env.PATH ?? ''}` })
    for (const [name, command] of [['linked', `hearth cat ${cid} > out-linked.bin`], ['pnpm --silent', `pnpm --silent hearth cat ${cid} > ${join(dir.path, 'out-pnpm.bin')}`]]) {
      const r = await run('sh', ['-c', command], { cwd: name === 'linked' ? dir.path : root, env })
      assert.equal(r.code, 0, `${name}: ${r.stderr}`)
    }
    assert.ok((await readFile(join(dir.path, 'out-linked.bin'))).equals(bytes), 'hearth cat > file is not the blob')
    assert.ok((await readFile(join(dir.path, 'out-pnpm.bin'))).equals(bytes), 'pnpm --silent hearth cat > file is not the blob')
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
    // the first start made a personal agent, so documents work at once; trust init shows it again
    const shown = JSON.parse((await runCli(['trust', 'init', '--json'], env)).stdout)
    assert.match(shown.agent_id, /^z6Mk/)
    assert.deepEqual(JSON.parse((await runCli(['trust', 'init', '--json'], env)).stdout).agent_id, shown.agent_id)
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
