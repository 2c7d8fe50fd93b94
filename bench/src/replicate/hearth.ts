import { P2P_ENV, peakRssMb, startHearth, timed } from '../tools.js'
import type { Daemon } from '../tools.js'

export interface P2PDaemon extends Daemon {
  name: string
  addr: string
  get: <T = any>(path: string) => Promise<T>
  post: <T = any>(path: string, body?: unknown) => Promise<T>
}

/** `hearth daemon` with p2p on, on free loopback ports, no mDNS; with JSON helpers and its TCP address. */
export async function startP2PDaemon (name: string, dataDir: string, env: Record<string, string> = {}): Promise<P2PDaemon> {
  const d = await startHearth(dataDir, { ...P2P_ENV, ...env }, 60_000).catch(err => { throw new Error(`hearth ${name}: ${err.message}`) })
  const get = async (path: string): Promise<any> => {
    const res = await fetch(d.url + path)
    if (res.status !== 200) throw new Error(`GET ${path} on ${name}: ${res.status}`)
    return await res.json()
  }
  const post = async (path: string, body?: unknown): Promise<any> => {
    const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })
    const json = await res.json()
    if (res.status >= 300) throw new Error(`POST ${path} on ${name}: ${res.status} ${JSON.stringify(json)}`)
    return json
  }
  const addr = (await get('/p2p/status')).addresses.find((a: string) => !a.includes('/ws'))
  return { ...d, name, addr, get, post }
}

/** Uploads a file with curl (streamed), pinned in `layer`; returns its CID. */
export async function addFile (d: P2PDaemon, file: string, layer: string): Promise<string> {
  const up = await timed('curl', ['-sS', '--fail', '-X', 'POST', '-T', file, '-H', `authorization: Bearer ${d.token}`, '-H', 'content-type: application/octet-stream', `${d.url}/blob?layer=${layer}`])
  return JSON.parse(up.stdout).cid
}

export async function waitUntil (check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/**
 * One transfer: a fresh daemon connects to `source` and pins the blob
 * (`POST /pins` of a root it lacks fetches every block from the source,
 * verifies each, stores it and registers the blob before it answers).
 * Returns the seconds the pin took and the fetcher's peak RSS.
 */
export async function fetchOnce (source: P2PDaemon, cid: string, dataDir: string): Promise<{ seconds: number, fetcherRssMb: number }> {
  const fetcher = await startP2PDaemon('fetcher', dataDir, { HEARTH_QUOTAS: 'cache=16GiB', HEARTH_FETCH_TIMEOUT_MS: '60000' })
  try {
    await fetcher.post('/p2p/connect', { addr: source.addr })
    await waitUntil(async () => (await fetcher.get('/p2p/peers')).peers.length > 0, 10_000, 'the connection')
    await new Promise(resolve => setTimeout(resolve, 500)) // identify
    const t0 = performance.now()
    // a fresh connection: no race with the server closing an idle keep-alive one
    const res = await fetch(`${fetcher.url}/pins`, { method: 'POST', headers: { connection: 'close', authorization: `Bearer ${fetcher.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ cid, layer: 'gift' }) })
      .catch(err => { throw new Error(`POST /pins on the fetcher failed (${err?.cause?.message ?? err?.message}); fetcher ${fetcher.stderrTail()}; source ${source.stderrTail()}`) })
    await res.arrayBuffer()
    const seconds = (performance.now() - t0) / 1000
    if (res.status !== 201) throw new Error(`POST /pins on the fetcher: ${res.status}; ${fetcher.stderrTail()}`)
    return { seconds, fetcherRssMb: await peakRssMb(fetcher.pid) }
  } finally {
    await fetcher.stop()
  }
}

/**
 * A read-through: a fresh daemon connects to `source` and curl GETs the blob
 * from it into `out` (the daemon streams the bytes as they arrive from the
 * source). Returns curl's time to the first byte and to the end.
 */
export async function readThroughOnce (source: P2PDaemon, cid: string, dataDir: string, out: string): Promise<{ firstByteSeconds: number, seconds: number, bytes: number, fetcherRssMb: number }> {
  const fetcher = await startP2PDaemon('reader', dataDir, { HEARTH_FETCH_TIMEOUT_MS: '60000' })
  try {
    await fetcher.post('/p2p/connect', { addr: source.addr })
    await waitUntil(async () => (await fetcher.get('/p2p/peers')).peers.length > 0, 10_000, 'the connection')
    await new Promise(resolve => setTimeout(resolve, 500)) // identify
    const r = await timed('curl', ['-sS', '--fail', '-o', out, '-w', '%{time_starttransfer} %{time_total} %{size_download}', `${fetcher.url}/blob/${cid}`])
    const [first, total, bytes] = r.stdout.trim().split(' ').map(Number)
    return { firstByteSeconds: first, seconds: total, bytes, fetcherRssMb: await peakRssMb(fetcher.pid) }
  } finally {
    await fetcher.stop()
  }
}
