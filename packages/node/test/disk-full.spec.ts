import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import { BIN, cleanEnv, runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

const MiB = 1024 * 1024
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Mounts a tmpfs of `size` at `dir`; the reason when this machine cannot (not root, no mount). */
function mountTmpfs (dir: string, size: string): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs (CI runs as root)'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' })
    return undefined
  } catch (err: any) {
    return `mount -t tmpfs failed: ${String(err?.stderr ?? err?.message).trim()}`
  }
}

/** Writes zeros into `file` until the file system refuses (ENOSPC). */
function fill (file: string): void {
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(MiB)
  try {
    for (;;) writeSync(fd, chunk)
  } catch (err: any) {
    if (err?.code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
}

/**
 * A suite's temporary folder with a tmpfs of `size` mounted at its `mnt`,
 * unmounted (after `cleanup`) and removed when the suite ends, failed or not.
 * `skip` says why the mount could not be made.
 */
function withTmpfs (size: string, cleanup: () => Promise<void>): { dir: string, mnt: string, skip: string | undefined } {
  const fs = { dir: '', mnt: '', skip: undefined as string | undefined }
  let remove = async (): Promise<void> => {}
  before(async () => {
    const dir = await tempDir()
    remove = dir.remove
    fs.dir = dir.path
    fs.mnt = join(dir.path, 'mnt')
    await mkdir(fs.mnt)
    fs.skip = mountTmpfs(fs.mnt, size)
  })
  after(async () => {
    await cleanup()
    if (fs.skip == null) execFileSync('umount', ['-l', fs.mnt])
    await remove()
  })
  return fs
}

describe('a full disk is a state, not an outage', () => {
  const daemons: DaemonProc[] = []
  const fs = withTmpfs('64m', async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))) })

  const post = async (d: DaemonProc, path: string, body: Uint8Array | object, type = 'application/json'): Promise<{ status: number, body: any }> => {
    const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': type }, body: body instanceof Uint8Array ? body : JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }
  const addBlob = async (d: DaemonProc, bytes: Uint8Array): Promise<{ status: number, body: any }> => await post(d, '/blob?layer=sovereign', bytes, 'application/octet-stream')
  const read = async (d: DaemonProc, cid: string): Promise<string> => sha(new Uint8Array(await (await fetch(`${d.url}/blob/${cid}`)).arrayBuffer()))

  it('refuses writes with 507 ERR_DISK_FULL, keeps serving and running, restarts, and frees space through unpin and gc', async t => {
    if (fs.skip != null) { t.skip(fs.skip); return }
    const data = join(fs.mnt, 'data')
    const env = { ENABLE_P2P: 'false', HEARTH_DISK_RESERVE: '8MiB' }
    let d = await spawnDaemon(data, env)
    daemons.push(d)
    assert.equal((await d.get('/storage')).body.disk.reserve_held, true, 'the reserve is laid down at start')

    // acknowledged writes before the disk fills
    const big = randomBytes(16 * MiB)
    const small = randomBytes(3 * MiB + 5)
    const bigAdd = await addBlob(d, big)
    const smallAdd = await addBlob(d, small)
    assert.equal(bigAdd.status, 201)
    assert.equal(smallAdd.status, 201)
    const doc = await post(d, '/trust/init', {})
    assert.equal(doc.status, 200, JSON.stringify(doc.body))

    // something else fills the disk
    fill(join(fs.mnt, 'filler'))
    const refused = await addBlob(d, randomBytes(4 * MiB))
    assert.equal(refused.status, 507, JSON.stringify(refused.body))
    assert.equal(refused.body.error, 'ERR_DISK_FULL')
    const storage = (await d.get('/storage')).body
    assert.equal(storage.disk.full, true)
    assert.equal(storage.layers.sovereign.roots, 2, 'the refused add changed nothing')
    assert.equal((await d.get('/ready')).body.checks.disk, 'full')
    const relate = await post(d, '/trust/relationships', { agent: doc.body.agent_id, kind: 'family' })
    assert.equal(relate.status, 507, 'every write is refused up front while the disk is full')
    assert.match(await (await fetch(`${d.url}/metrics`)).text(), /^hearth_disk_full 1$/m)

    // reads go on, and the process outlives its timers (the access-time flush ran into the full disk before)
    assert.equal(await read(d, bigAdd.body.cid), sha(big))
    await new Promise(resolve => setTimeout(resolve, 6000))
    assert.equal(d.proc.exitCode, null, d.output().slice(-2000))
    assert.equal((await d.get('/health')).status, 200)

    // a restart on the full disk works
    const stopped = await d.kill('SIGTERM')
    assert.equal(stopped.code, 0, d.output().slice(-2000))
    d = await spawnDaemon(data, env)
    daemons.push(d)
    assert.equal((await d.get('/storage')).body.disk.full, true)
    assert.equal(await read(d, smallAdd.body.cid), sha(small))

    // unpin and gc free the space; writes are accepted again
    const unpin = await fetch(`${d.url}/pins/${bigAdd.body.cid}?layer=sovereign`, { method: 'DELETE', headers: { authorization: `Bearer ${d.token}` } })
    assert.equal(unpin.status, 200, await unpin.text())
    const gc = await runCli(['gc'], cleanEnv({ HEARTH_DATA: data }))
    assert.match(gc.stdout, /gc: \d+ cached blobs evicted/, gc.stdout + gc.stderr + d.output().slice(-3000))
    await waitFor(async () => (await d.get('/storage')).body.disk.full === false, 20_000, 'the disk to have room again')
    const after = await addBlob(d, randomBytes(2 * MiB))
    assert.equal(after.status, 201, JSON.stringify(after.body))
    assert.equal((await d.get('/storage')).body.disk.reserve_held, true, 'the reserve is taken back')

    // every acknowledged write is intact
    assert.equal(await read(d, smallAdd.body.cid), sha(small))
    assert.equal((await d.get('/trust/self')).body.agent_id, doc.body.agent_id)
  })
})

describe('logging to a full disk', () => {
  let proc: ChildProcess | undefined
  const fs = withTmpfs('4m', async () => { if (proc != null && proc.exitCode == null && proc.signalCode == null) proc.kill('SIGKILL') })

  it('starts, serves and stops with stdout on a full file system, counting the lines it drops', { timeout: 60_000 }, async t => {
    if (fs.skip != null) { t.skip(fs.skip); return }
    fill(join(fs.mnt, 'filler'))
    const data = join(fs.dir, 'data')
    // stdout and stderr are a file on the full tmpfs: every write fails with ENOSPC
    const fd = openSync(join(fs.mnt, 'daemon.log'), 'a')
    proc = spawn(process.execPath, [BIN, 'daemon'], {
      env: cleanEnv({ HEARTH_DATA: data, HEARTH_HTTP_PORT: '0', P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', HEARTH_LOG_LEVEL: 'debug' }),
      stdio: ['ignore', fd, fd]
    })
    closeSync(fd)
    const exited = new Promise<[number | null, NodeJS.Signals | null]>(resolve => proc!.on('exit', (c, s) => resolve([c, s])))
    const info = await waitFor(async () => {
      if (proc!.exitCode != null) throw new Error(`the daemon exited with ${proc!.exitCode}`)
      try {
        const parsed = JSON.parse(await readFile(join(data, 'api.json'), 'utf8'))
        return parsed.pid === proc!.pid && (await fetch(`${parsed.url}/ready`)).status === 200 ? parsed as { url: string } : undefined
      } catch { return undefined }
    }, 30_000, 'the daemon to be ready with stdout on a full disk')
    const health = await fetch(`${info.url}/health`)
    assert.ok(health.status < 500, `/health answered ${health.status}`)
    const metrics = await (await fetch(`${info.url}/metrics`)).text()
    const dropped = Number(/^hearth_log_lines_dropped_total\S* (\d+)/m.exec(metrics)?.[1] ?? 'NaN')
    assert.ok(dropped > 0, `dropped log lines: ${dropped}`)
    // SIGTERM stops it promptly: nothing waits on the log
    const t0 = Date.now()
    proc.kill('SIGTERM')
    const [code, signal] = await Promise.race([exited, new Promise<[string, string]>(resolve => setTimeout(() => resolve(['hung', 'hung']), 15_000))])
    assert.deepEqual([code, signal], [0, null], `exit after SIGTERM (${Date.now() - t0} ms)`)
  })
})

describe('a full disk with peers at work', () => {
  const daemons: DaemonProc[] = []
  const fs = withTmpfs('48m', async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))) })

  const call = async (d: DaemonProc, method: string, path: string, body?: Uint8Array | object): Promise<{ status: number, body: any }> => {
    const raw = body instanceof Uint8Array
    const res = await fetch(d.url + path, { method, headers: { authorization: `Bearer ${d.token}`, 'content-type': raw ? 'application/octet-stream' : 'application/json' }, body: body == null ? undefined : raw ? body : JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }
  const holds = async (d: DaemonProc, cid: string): Promise<boolean> => {
    const info = await d.get(`/blob/${cid}/info`).catch(() => undefined)
    return info?.status === 200 && info.body.pins.some((p: any) => p.layer === 'sovereign' && p.owner != null)
  }

  it('a device whose disk fills keeps its peers, takes in nothing, stays up, and catches up once there is room', { timeout: 120_000 }, async t => {
    if (fs.skip != null) { t.skip(fs.skip); return }
    const env = { HEARTH_REPLICATION_INTERVAL_MS: '500', HEARTH_PROOF_INTERVAL_MS: '1000', HEARTH_FETCH_TIMEOUT_MS: '5000', HEARTH_REPLICATION_TARGETS: 'sovereign=1' }
    const laptop = await spawnDaemon(join(fs.dir, 'laptop'), env)
    daemons.push(laptop)
    assert.equal((await call(laptop, 'POST', '/trust/init', {})).status, 200)
    const server = await spawnDaemon(join(fs.mnt, 'server'), { ...env, HEARTH_DISK_RESERVE: '4MiB', HEARTH_BOOTSTRAP: (await laptop.get('/p2p/status')).body.addresses[0] })
    daemons.push(server)
    const { body: invite } = await call(laptop, 'POST', '/trust/invites', {})
    assert.equal((await call(server, 'POST', '/trust/join', { invitation: invite.invitation, name: 'server' })).status, 200)

    const first = randomBytes(2 * MiB)
    const x = (await call(laptop, 'POST', '/blob?layer=sovereign', first)).body.cid
    await waitFor(async () => await holds(server, x), 30_000, 'the server to hold the first blob')

    // the server's disk fills; the laptop goes on adding and relating
    fill(join(fs.mnt, 'filler'))
    const y = (await call(laptop, 'POST', '/blob?layer=sovereign', randomBytes(6 * MiB))).body.cid
    assert.equal((await call(laptop, 'POST', '/trust/relationships', { agent: keyOf(), kind: 'friend' })).status, 201)
    await waitFor(async () => (await server.get('/storage')).body.disk.full === true, 20_000, 'the server to find its disk full').catch(err => { console.log(server.output().slice(-6000)); throw err })
    await new Promise(resolve => setTimeout(resolve, 5000))
    assert.equal(server.proc.exitCode, null, server.output().slice(-3000))
    assert.equal(await holds(server, y), false, 'a replica was taken onto a full disk')
    assert.equal((await server.get('/health')).status < 500, true)
    assert.ok((await server.get('/p2p/status')).body.peers.some((p: any) => p.peer_id === laptop.peerId), 'the server lost its peer')
    const own = (await laptop.get('/replication/status')).body.own.find((r: any) => r.cid === y)
    assert.notEqual(own?.state, 'ok', `the laptop counts a copy the server cannot hold: ${JSON.stringify(own)}`)
    assert.doesNotMatch(server.output(), /uncaught|unhandled/i)

    // room again: the server takes what it missed, and kept what it had
    execFileSync('rm', ['-f', join(fs.mnt, 'filler')])
    await waitFor(async () => await holds(server, y), 60_000, 'the server to catch up after the disk had room')
    assert.equal(sha(new Uint8Array(await (await fetch(`${server.url}/blob/${x}`)).arrayBuffer())), sha(first))
    assert.equal((await server.get('/storage')).body.disk.full, false)
  })
})

/** a fresh agent id to relate to */
function keyOf (): string {
  return keyIdFromPublicKey(generateKeyPair().publicKey)
}

/** `HEARTH_SOAK=1` runs many fill/free cycles; the suite runs two */
const CYCLES = process.env.HEARTH_SOAK === '1' ? 40 : 2

describe('filling and freeing the disk, over and over', () => {
  const daemons: DaemonProc[] = []
  const fs = withTmpfs('40m', async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))) })

  it(`the daemon fills its own disk and frees it ${CYCLES} times: every acknowledged blob still pinned reads back whole`, { timeout: 60_000 * CYCLES }, async t => {
    if (fs.skip != null) { t.skip(fs.skip); return }
    const data = join(fs.mnt, 'data')
    const d = await spawnDaemon(data, { ENABLE_P2P: 'false', HEARTH_DISK_RESERVE: '4MiB' })
    daemons.push(d)
    const auth = { authorization: `Bearer ${d.token}` }
    const pinned = new Map<string, string>()
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // add until the disk refuses; each 201 is a promise kept below
      let refusedWith: number | undefined
      for (let i = 0; i < 64 && refusedWith == null; i++) {
        const bytes = randomBytes(2 * MiB + i)
        const res = await fetch(`${d.url}/blob?layer=sovereign`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: bytes })
        const body = await res.json() as any
        if (res.status === 201) pinned.set(body.cid, sha(bytes))
        else refusedWith = res.status
      }
      assert.equal(refusedWith, 507, `cycle ${cycle}: the disk never filled`)
      // unpin half of what is pinned, collect, and wait for writes to be accepted again
      for (const cid of [...pinned.keys()].filter((_, i) => i % 2 === 0)) {
        const res = await fetch(`${d.url}/pins/${cid}?layer=sovereign`, { method: 'DELETE', headers: auth })
        assert.equal(res.status, 200, `cycle ${cycle}: unpin on a full disk answered ${res.status}`)
        pinned.delete(cid)
      }
      const gc = await runCli(['gc'], cleanEnv({ HEARTH_DATA: data }))
      // half the blobs gone is room enough: the gc that gave it back says so at once
      assert.equal(gc.code, 0, gc.stdout + gc.stderr + d.output().slice(-4000))
      assert.equal((await d.get('/storage')).body.disk.full, false, `cycle ${cycle}: still full after unpin and gc`)
      for (const [cid, hash] of pinned) assert.equal(await (async () => sha(new Uint8Array(await (await fetch(`${d.url}/blob/${cid}`)).arrayBuffer())))(), hash, `cycle ${cycle}: ${cid}`)
      assert.equal(d.proc.exitCode, null)
    }
    t.diagnostic(`${CYCLES} cycles, ${pinned.size} blobs pinned at the end`)
  })
})
