import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
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

describe('a full disk is a state, not an outage', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let mnt = ''
  let skip: string | undefined
  const daemons: DaemonProc[] = []
  before(async () => {
    dir = await tempDir()
    mnt = join(dir.path, 'mnt')
    await mkdir(mnt)
    skip = mountTmpfs(mnt, '64m')
  })
  after(async () => {
    await Promise.all(daemons.map(async d => await d.kill('SIGKILL')))
    if (skip == null) execFileSync('umount', ['-l', mnt])
    await dir.remove()
  })

  const post = async (d: DaemonProc, path: string, body: Uint8Array | object, type = 'application/json'): Promise<{ status: number, body: any }> => {
    const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': type }, body: body instanceof Uint8Array ? body : JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }
  const addBlob = async (d: DaemonProc, bytes: Uint8Array): Promise<{ status: number, body: any }> => await post(d, '/blob?layer=sovereign', bytes, 'application/octet-stream')
  const read = async (d: DaemonProc, cid: string): Promise<string> => sha(new Uint8Array(await (await fetch(`${d.url}/blob/${cid}`)).arrayBuffer()))

  it('refuses writes with 507 ERR_DISK_FULL, keeps serving and running, restarts, and frees space through unpin and gc', async t => {
    if (skip != null) { t.skip(skip); return }
    const data = join(mnt, 'data')
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
    fill(join(mnt, 'filler'))
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
  let dir: { path: string, remove: () => Promise<void> }
  let mnt = ''
  let skip: string | undefined
  let proc: ChildProcess | undefined
  before(async () => {
    dir = await tempDir()
    mnt = join(dir.path, 'logs')
    await mkdir(mnt)
    skip = mountTmpfs(mnt, '4m')
  })
  after(async () => {
    if (proc != null && proc.exitCode == null && proc.signalCode == null) proc.kill('SIGKILL')
    if (skip == null) execFileSync('umount', ['-l', mnt])
    await dir.remove()
  })

  it('starts, serves and stops with stdout on a full file system, counting the lines it drops', { timeout: 60_000 }, async t => {
    if (skip != null) { t.skip(skip); return }
    fill(join(mnt, 'filler'))
    const data = join(dir.path, 'data')
    // stdout and stderr are a file on the full tmpfs: every write fails with ENOSPC
    const fd = openSync(join(mnt, 'daemon.log'), 'a')
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
    const dropped = Number(/^hearth_log_lines_dropped\S* (\d+)/m.exec(metrics)?.[1] ?? 'NaN')
    assert.ok(dropped > 0, `dropped log lines: ${dropped}`)
    // SIGTERM stops it promptly: nothing waits on the log
    const t0 = Date.now()
    proc.kill('SIGTERM')
    const [code, signal] = await Promise.race([exited, new Promise<[string, string]>(resolve => setTimeout(() => resolve(['hung', 'hung']), 15_000))])
    assert.deepEqual([code, signal], [0, null], `exit after SIGTERM (${Date.now() - t0} ms)`)
  })
})
