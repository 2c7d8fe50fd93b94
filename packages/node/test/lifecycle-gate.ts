/**
 * The lifecycle gate: drives one daemon through start → add blobs and
 * documents → stop → start → SIGKILL (mid-upload, mid-edit) → start → …, and
 * after every start checks that every acknowledged blob is present and
 * intact, every acknowledged document edit is there, the PeerId is unchanged
 * and /ready answered within its bound.
 *
 * `pnpm lifecycle -- --cycles 20` runs it on demand; the test suite runs 3.
 */
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { spawnDaemon, tempDir } from './helpers.js'
import type { DaemonProc } from './helpers.js'

export interface LifecycleOptions {
  cycles: number
  /** bound on spawn → /ready, ms */
  readyBoundMs?: number
  /** bound on SIGTERM → exit, ms */
  stopBoundMs?: number
  log?: (line: string) => void
}

export interface LifecycleReport {
  cycles: number
  blobs: number
  documents: number
  edits: number
  bytes: number
  readyMs: number[]
  stopMs: number[]
  kills: number
}

interface Expected { cid: string, size: number, sha256: string }

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Sizes that cover one raw block, a block boundary and a multi-leaf DAG. */
const SIZES = [0, 1, 4096, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 777]

async function upload (d: DaemonProc, body: Buffer): Promise<string> {
  const res = await fetch(`${d.url}/blob?layer=sovereign`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/octet-stream' }, body })
  if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${await res.text()}`)
  return (await res.json() as { cid: string }).cid
}

const authed = (d: DaemonProc, method: string, body?: unknown): RequestInit => ({
  method,
  headers: { authorization: `Bearer ${d.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
  body: body === undefined ? undefined : JSON.stringify(body)
})

/** Documents: each one's last acknowledged content (`n` may be one ahead when a SIGKILL ate an acknowledgement). */
type DocExpect = Map<string, { value: Record<string, unknown>, maybeNext?: number }>

async function createDoc (d: DaemonProc, content: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${d.url}/docs`, authed(d, 'POST', content))
  if (res.status !== 201) throw new Error(`creating a document answered ${res.status}: ${await res.text()}`)
  return (await res.json() as { id: string }).id
}

async function patchDoc (d: DaemonProc, id: string, patch: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${d.url}/docs/${id}`, authed(d, 'PATCH', patch))
  if (res.status !== 200) throw new Error(`patching ${id} answered ${res.status}: ${await res.text()}`)
}

async function verifyDocs (d: DaemonProc, docs: DocExpect): Promise<void> {
  for (const [id, e] of docs) {
    const res = await fetch(`${d.url}/cache/docs/${id}`, { headers: { authorization: `Bearer ${d.token}` } })
    if (res.status !== 200) throw new Error(`acknowledged document ${id} answered ${res.status}`)
    const value = (await res.json() as { value: Record<string, unknown> }).value
    const ok = JSON.stringify(value) === JSON.stringify(e.value) ||
      (e.maybeNext != null && JSON.stringify(value) === JSON.stringify({ ...e.value, n: e.maybeNext }))
    if (!ok) throw new Error(`acknowledged document ${id} came back as ${JSON.stringify(value)}, expected ${JSON.stringify(e.value)}`)
    if (e.maybeNext != null) e.value = value
    delete e.maybeNext
  }
}

/** Edits a document as fast as acknowledgements come, until stopped; records the last acknowledged value. */
function startEditing (d: DaemonProc, id: string, e: { value: Record<string, unknown>, maybeNext?: number }): () => void {
  let running = true
  void (async () => {
    let n = Number(e.value.n ?? 0)
    while (running) {
      const next = n + 1
      e.maybeNext = next
      try {
        await patchDoc(d, id, { n: next })
      } catch {
        return
      }
      if (!running) return
      n = next
      e.value = { ...e.value, n }
      delete e.maybeNext
    }
  })()
  return () => { running = false }
}

async function verify (d: DaemonProc, expected: Expected[]): Promise<void> {
  for (const e of expected) {
    const res = await fetch(`${d.url}/blob/${e.cid}`)
    if (res.status !== 200) throw new Error(`acknowledged blob ${e.cid} answered ${res.status}`)
    const body = Buffer.from(await res.arrayBuffer())
    if (body.length !== e.size || sha256(body) !== e.sha256) throw new Error(`acknowledged blob ${e.cid} came back damaged (${body.length} of ${e.size} bytes)`)
  }
}

/** Starts an upload of `size` bytes and leaves it unfinished (the daemon is killed under it). */
function startDanglingUpload (d: DaemonProc, size: number): () => void {
  const req = request(`${d.url}/blob`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-length': String(size) } })
  req.on('error', () => {})
  req.write(randomBytes(Math.min(size, 2 * 1024 * 1024)))
  return () => req.destroy()
}

export async function runLifecycle (opts: LifecycleOptions): Promise<LifecycleReport> {
  const log = opts.log ?? (() => {})
  const readyBound = opts.readyBoundMs ?? 15_000
  const stopBound = opts.stopBoundMs ?? 10_000
  const dir = await tempDir('hearth-lifecycle-')
  const expected: Expected[] = []
  const docs: DocExpect = new Map()
  const report: LifecycleReport = { cycles: 0, blobs: 0, documents: 0, edits: 0, bytes: 0, readyMs: [], stopMs: [], kills: 0 }
  let peerId: string | undefined
  try {
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      const t0 = Date.now()
      const d = await spawnDaemon(dir.path, { ENABLE_P2P: 'true' })
      const readyMs = Date.now() - t0
      report.readyMs.push(readyMs)
      if (readyMs > readyBound) throw new Error(`cycle ${cycle}: /ready took ${readyMs} ms (bound ${readyBound} ms)`)
      peerId ??= d.peerId
      if (d.peerId !== peerId) throw new Error(`cycle ${cycle}: PeerId changed from ${peerId} to ${d.peerId}`)
      await verify(d, expected)
      await verifyDocs(d, docs)
      if (cycle === 1) {
        const res = await fetch(`${d.url}/trust/init`, authed(d, 'POST'))
        if (res.status !== 200) throw new Error(`trust init answered ${res.status}`)
      }

      for (let i = 0; i < 3; i++) {
        const content = { cycle, i, n: 0, note: randomBytes(64).toString('base64') }
        docs.set(await createDoc(d, content), { value: content })
      }
      for (const [id, e] of [...docs].slice(-6)) {
        await patchDoc(d, id, { n: Number(e.value.n) + 1 })
        e.value = { ...e.value, n: Number(e.value.n) + 1 }
        report.edits++
      }

      for (const size of SIZES) {
        const body = randomBytes(size)
        const cid = await upload(d, body)
        expected.push({ cid, size, sha256: sha256(body) })
        report.bytes += size
      }
      await verify(d, expected)

      if (cycle % 2 === 1) {
        const exit = await d.kill('SIGTERM')
        if (exit.code !== 0) throw new Error(`cycle ${cycle}: SIGTERM exit code ${exit.code}:\n${d.output().slice(-2000)}`)
        if (exit.ms > stopBound) throw new Error(`cycle ${cycle}: graceful stop took ${exit.ms} ms (bound ${stopBound} ms)`)
        report.stopMs.push(exit.ms)
        log(`cycle ${cycle}: ready in ${readyMs} ms, ${expected.length} blobs and ${docs.size} documents intact, stopped in ${exit.ms} ms`)
      } else {
        const abandon = startDanglingUpload(d, 8 * 1024 * 1024)
        const [editedId, edited] = [...docs][docs.size - 1]
        const stopEditing = startEditing(d, editedId, edited)
        await new Promise(resolve => setTimeout(resolve, 20 + Math.floor(Math.random() * 200)))
        await d.kill('SIGKILL')
        stopEditing()
        abandon()
        report.kills++
        log(`cycle ${cycle}: ready in ${readyMs} ms, ${expected.length} blobs and ${docs.size} documents intact, SIGKILLed mid-upload and mid-edit`)
      }
      report.cycles = cycle
    }
    // one last start: everything acknowledged survived the last stop or kill
    const d = await spawnDaemon(dir.path)
    await verify(d, expected)
    await verifyDocs(d, docs)
    if (d.peerId !== peerId) throw new Error('PeerId changed after the last cycle')
    await d.kill('SIGTERM')
    report.blobs = expected.length
    report.documents = docs.size
    return report
  } finally {
    await dir.remove()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ args: process.argv.slice(2).filter(a => a !== '--'), options: { cycles: { type: 'string', default: '20' }, help: { type: 'boolean' } } })
  if (values.help === true) {
    console.log('usage: pnpm lifecycle -- [--cycles N]   (default 20)')
    process.exit(0)
  }
  const cycles = Number(values.cycles)
  if (!Number.isSafeInteger(cycles) || cycles < 1) {
    console.error('--cycles must be a positive integer')
    process.exit(2)
  }
  runLifecycle({ cycles, log: line => console.log(line) }).then(r => {
    const sorted = [...r.readyMs].sort((a, b) => a - b)
    console.log(`lifecycle gate passed: ${r.cycles} cycles, ${r.blobs} blobs (${(r.bytes / 1048576).toFixed(1)} MiB) and ${r.documents} documents intact, ${r.kills} SIGKILLs, ready median ${sorted[sorted.length >> 1]} ms, max ${sorted[sorted.length - 1]} ms`)
  }, err => {
    console.error(`lifecycle gate FAILED: ${err.message}`)
    process.exit(1)
  })
}
