import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { cleanEnv, runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

const MiB = 1024 * 1024

const post = async (d: DaemonProc, path: string, body?: unknown): Promise<any> => {
  const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })
  const json = await res.json()
  assert.ok(res.status < 300, `${path}: ${JSON.stringify(json)}`)
  return json
}

/** Adds `size` random bytes to `d` as a stream (never whole in memory); answers the CID and the SHA-256 of what was sent. */
async function addRandom (d: DaemonProc, size: number, layer = 'sovereign'): Promise<{ cid: string, sha: string }> {
  const hash = createHash('sha256')
  const body = Readable.from((function * () {
    for (let left = size; left > 0; left -= MiB) {
      const chunk = randomBytes(Math.min(MiB, left))
      hash.update(chunk)
      yield chunk
    }
  })())
  const res = await fetch(`${d.url}/blob?layer=${layer}`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/x-test' }, body: Readable.toWeb(body) as any, duplex: 'half' } as any)
  const json = await res.json() as any
  assert.equal(res.status, 201, JSON.stringify(json))
  return { cid: json.cid, sha: hash.digest('hex') }
}

const received = async (d: DaemonProc): Promise<number> => {
  const text = await (await fetch(`${d.url}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith('hearth_blocks_exchanged_total{kind="received"}'))
  return line == null ? 0 : Number(line.split(' ').pop())
}

/** Reads a response body, noting when its first byte came, hashing it as it goes; `stopAfter` aborts once that many bytes arrived. */
async function timedRead (url: string, opts: { headers?: Record<string, string>, stopAfter?: number } = {}): Promise<{ status: number, headers: Headers, bytes: number, sha: string, firstMs: number, totalMs: number }> {
  const t0 = performance.now()
  const abort = new AbortController()
  const res = await fetch(url, { headers: opts.headers, signal: abort.signal })
  const hash = createHash('sha256')
  let bytes = 0
  let firstMs = -1
  try {
    for await (const chunk of res.body as any as AsyncIterable<Uint8Array>) {
      if (firstMs < 0) firstMs = performance.now() - t0
      hash.update(chunk)
      bytes += chunk.length
      if (opts.stopAfter != null && bytes >= opts.stopAfter) { abort.abort(); break }
    }
  } catch (err: any) {
    if (opts.stopAfter == null) throw err
  }
  return { status: res.status, headers: res.headers, bytes, sha: hash.digest('hex'), firstMs, totalMs: performance.now() - t0 }
}

describe('reads from peers stream, and quotas bound the disk', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  let owner: DaemonProc
  let ownerAgent: string
  let big: { cid: string, sha: string }
  before(async () => {
    dir = await tempDir()
    owner = await spawnDaemon(join(dir.path, 'owner'))
    daemons.push(owner)
    ownerAgent = (await post(owner, '/trust/init')).agent_id
    big = await addRandom(owner, 1024 * MiB)
  })
  after(async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))); await dir.remove() })

  /** A daemon of a relative of the owner's agent (so it may read the owner's pins; no grant, so it replicates nothing), connected to the owner. */
  const relative = async (name: string, env: Record<string, string> = {}): Promise<DaemonProc> => {
    const d = await spawnDaemon(join(dir.path, name), { HEARTH_BOOTSTRAP: (await owner.get('/p2p/status')).body.addresses[0], ...env })
    daemons.push(d)
    const agent = (await post(d, '/trust/init')).agent_id
    await waitFor(async () => (await owner.get(`/trust/agents/${agent}`)).status === 200, 15_000, 'the owner to learn the relative\'s certificate')
    await post(owner, '/trust/relationships', { agent, kind: 'family' })
    await waitFor(async () => (await d.get(`/trust/agents/${ownerAgent}`)).body.relationships?.some((r: any) => r.agent === agent), 15_000, 'the relationship to reach the relative')
    return d
  }

  it('streams a 256 MiB read-through as it arrives, keeps it in the cache, and answers HEAD and a range from the blocks they need', async () => {
    const reader = await relative('reader', { HEARTH_FETCH_TIMEOUT_MS: '2000' })
    const mid = await addRandom(owner, 256 * MiB)
    const r = await timedRead(`${reader.url}/blob/${mid.cid}`)
    assert.equal(r.status, 200)
    assert.equal(r.bytes, 256 * MiB)
    assert.equal(r.sha, mid.sha, 'the bytes are the owner\'s')
    assert.equal(r.headers.get('content-type'), 'application/x-test', 'the type the owner stored')
    assert.ok(r.firstMs < 0.25 * r.totalMs, `first byte after ${r.firstMs.toFixed(0)} ms of ${r.totalMs.toFixed(0)} ms`)
    // it fit the 1 GiB cache: kept there, whole
    const info = await waitFor(async () => { const i = await reader.get(`/blob/${mid.cid}/info`); return i.status === 200 ? i.body : undefined }, 10_000, 'the read-through in the cache')
    assert.deepEqual(info.layers, ['cache'])
    assert.equal(info.content_type, 'application/x-test')

    // HEAD of a 1 GiB blob costs its root alone
    let before = await received(reader)
    const head = await fetch(`${reader.url}/blob/${big.cid}`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), String(1024 * MiB))
    assert.equal(await received(reader) - before, 1, 'HEAD fetched the root only')

    // 1 MiB from the middle: the root and the two leaves it straddles
    before = await received(reader)
    const offset = 512 * MiB + 12345
    const ranged = await timedRead(`${reader.url}/blob/${big.cid}`, { headers: { range: `bytes=${offset}-${offset + MiB - 1}` } })
    assert.equal(ranged.status, 206)
    assert.equal(ranged.bytes, MiB)
    assert.equal(ranged.headers.get('content-range'), `bytes ${offset}-${offset + MiB - 1}/${1024 * MiB}`)
    const moved = await received(reader) - before
    assert.ok(moved >= 2 && moved <= 3, `a 1 MiB range moved ${moved} blocks`)
    const own = await fetch(`${owner.url}/blob/${big.cid}`, { headers: { range: `bytes=${offset}-${offset + MiB - 1}` } })
    assert.equal(createHash('sha256').update(Buffer.from(await own.arrayBuffer())).digest('hex'), ranged.sha, 'the same bytes as the owner\'s')
    assert.equal((await reader.get(`/blob/${big.cid}/info`)).status, 404, 'a range is passed through, not kept')

    // the whole GiB, longer than the 2 s fetch timeout: it bounds silence, not a healthy transfer; larger than the cache, so passed through
    const whole = await timedRead(`${reader.url}/blob/${big.cid}`)
    assert.equal(whole.bytes, 1024 * MiB)
    assert.equal(whole.sha, big.sha)
    assert.ok(whole.totalMs > 2000, `the transfer took ${whole.totalMs.toFixed(0)} ms`)
    assert.equal((await reader.get(`/blob/${big.cid}/info`)).status, 404)
    const usage = (await reader.get('/storage')).body
    assert.ok(usage.layers.cache.used_bytes <= 257 * MiB, JSON.stringify(usage.layers.cache))
  })

  it('with a 64 MiB cache, a 200 MiB read-through arrives whole and leaves the disk within the quota; an aborted read leaves it the same', async () => {
    const small = await relative('small', { HEARTH_QUOTAS: 'cache=64MiB' })
    const blob = await addRandom(owner, 200 * MiB)
    const fits = await addRandom(owner, 48 * MiB)
    const dbSize = (): number => statSync(join(small.dataDir, 'blobs.db')).size
    const slack = 16 * MiB
    const settled = async (what: string): Promise<void> => {
      await waitFor(async () => {
        const u = (await small.get('/storage')).body
        return u.layers.cache.used_bytes <= 64 * MiB && u.blocks.bytes <= 64 * MiB + slack && dbSize() <= 64 * MiB + slack
      }, 20_000, `${what}: the store back within the cache quota plus ${slack / MiB} MiB`)
    }

    const r = await timedRead(`${small.url}/blob/${blob.cid}`)
    assert.equal(r.bytes, 200 * MiB)
    assert.equal(r.sha, blob.sha)
    await settled('after a read larger than the cache')
    assert.equal((await small.get(`/blob/${blob.cid}/info`)).status, 404)

    // aborted after about 50 MiB: the pass-through one, then one the cache would have kept
    const cut = await timedRead(`${small.url}/blob/${blob.cid}`, { stopAfter: 50 * MiB })
    assert.ok(cut.bytes >= 50 * MiB && cut.bytes < 200 * MiB)
    await settled('after an aborted pass-through read')
    const cutKept = await timedRead(`${small.url}/blob/${fits.cid}`, { stopAfter: 20 * MiB })
    assert.ok(cutKept.bytes < 48 * MiB)
    await settled('after an aborted read into the cache')
    await waitFor(async () => (await small.get('/storage')).body.blocks.count === 0, 20_000, 'nothing of the aborted read left')

    // read whole, it is kept
    const kept = await timedRead(`${small.url}/blob/${fits.cid}`)
    assert.equal(kept.sha, fits.sha)
    await waitFor(async () => (await small.get(`/blob/${fits.cid}/info`)).status === 200, 10_000, 'the 48 MiB read kept in the cache')
    await settled('after a read the cache kept')
  })

  it('pin add fetches a root only a peer has, with --no-fetch refusing; a root that cannot fit is refused before its download', async () => {
    const pinner = await relative('pinner', { HEARTH_QUOTAS: 'gift=2MiB' })
    const blob = await addRandom(owner, 5 * MiB + 3)
    const env = cleanEnv({ HEARTH_DATA: pinner.dataDir })

    const refused = await runCli(['pin', 'add', blob.cid, '--layer', 'reciprocal', '--no-fetch'], env)
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ERR_BLOB_NOT_FOUND|not here/)
    const api404 = await fetch(`${pinner.url}/pins`, { method: 'POST', headers: { authorization: `Bearer ${pinner.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ cid: blob.cid, layer: 'reciprocal', fetch: false }) })
    assert.equal(api404.status, 404)
    assert.equal((await api404.json() as any).error, 'ERR_BLOB_NOT_FOUND')

    const pinned = await runCli(['pin', 'add', blob.cid, '--layer', 'reciprocal', '--json'], env, 60_000)
    assert.equal(pinned.code, 0, pinned.stderr)
    assert.equal(JSON.parse(pinned.stdout).layer, 'reciprocal')
    const back = await fetch(`${pinner.url}/blob/${blob.cid}`)
    assert.equal(createHash('sha256').update(Buffer.from(await back.arrayBuffer())).digest('hex'), blob.sha)
    assert.deepEqual((await pinner.get(`/blob/${blob.cid}/info`)).body.layers, ['reciprocal'])

    // gift holds 2 MiB here: refused once the root says 5 MiB, with nothing else downloaded or left
    const other = await addRandom(owner, 5 * MiB + 3)
    const before = await received(pinner)
    const full = await fetch(`${pinner.url}/pins`, { method: 'POST', headers: { authorization: `Bearer ${pinner.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ cid: other.cid, layer: 'gift' }) })
    assert.equal(full.status, 507)
    assert.equal((await full.json() as any).error, 'ERR_QUOTA_EXCEEDED')
    assert.ok(await received(pinner) - before <= 2 * 8, 'refused before the download, not after it')
    assert.equal((await pinner.get(`/blob/${other.cid}/info`)).status, 404)
    await waitFor(async () => (await pinner.get('/storage')).body.blocks.bytes <= 6 * MiB, 10_000, 'only the pinned blob\'s blocks remain')

    // the progress stream an API client (and the CLI on a terminal) reads
    const third = await addRandom(owner, 3 * MiB)
    const res = await fetch(`${pinner.url}/pins`, { method: 'POST', headers: { authorization: `Bearer ${pinner.token}`, 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify({ cid: third.cid, layer: 'invested' }) })
    assert.equal(res.status, 200)
    const lines = (await res.text()).trim().split('\n').map(l => JSON.parse(l))
    assert.equal(lines[lines.length - 1].type, 'pinned')
    assert.equal(lines[lines.length - 1].pin.cid, third.cid)
    const progress = lines.filter(l => l.type === 'progress')
    assert.ok(progress.length >= 1 && progress[progress.length - 1].bytes === 3 * MiB && progress[progress.length - 1].total === 3 * MiB, JSON.stringify(progress))
  })
})
