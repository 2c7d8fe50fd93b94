import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { P2P_ENV, startHearth } from '../tools.js'
import type { Daemon } from '../tools.js'
import type { SyncRun } from './index.js'

async function call (d: Daemon, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(d.url + path, {
    method,
    headers: { authorization: `Bearer ${d.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return text === '' ? undefined : JSON.parse(text)
}

async function until<T> (what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

/** user + system CPU seconds a process has used */
async function cpuSeconds (pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

async function rssMb (pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024
}

/** Reads server-sent events from the receiving daemon, noting when each document's new heads arrive. */
async function watchAll (d: Daemon, seen: Map<string, number>, signal: AbortSignal): Promise<void> {
  const res = await fetch(`${d.url}/stream/docs`, { headers: { authorization: `Bearer ${d.token}` }, signal })
  let buf = ''
  void (async () => {
    for await (const chunk of res.body as any) {
      buf += Buffer.from(chunk).toString()
      let end
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const data = buf.slice(0, end).split('\n').find(l => l.startsWith('data: '))
        buf = buf.slice(end + 2)
        if (data != null) seen.set(JSON.parse(data.slice(6)).id, performance.now())
      }
    }
  })().catch(() => {})
}

/**
 * Two Hearth daemons on loopback whose agents are family: A holds `count`
 * documents shared with B's agent; B connects and receives them all over
 * `/hearth/sync/1.0.0`; then A changes one document at a time over HTTP and
 * B reports, on its change stream, when each arrives.
 */
export async function runHearth (count: number, samples: number, log: (s: string) => void): Promise<SyncRun & { setupSeconds: number, cpuMsPerDoc: { sender: number, receiver: number } }> {
  const work = await mkdtemp(join(tmpdir(), 'hearth-bench-sync-'))
  const a = await startHearth(join(work, 'a'), P2P_ENV)
  let b = await startHearth(join(work, 'b'), P2P_ENV)
  const controller = new AbortController()
  try {
    const aAgent = (await call(a, 'POST', '/trust/init')).agent_id
    const bAgent = (await call(b, 'POST', '/trust/init')).agent_id
    const addrOf = async (d: Daemon): Promise<string> => (await call(d, 'GET', '/p2p/status')).addresses.find((x: string) => !x.includes('/ws'))
    const aPeer = (await call(a, 'GET', '/p2p/status')).peer_id
    await call(b, 'POST', '/p2p/connect', { addr: await addrOf(a) })
    await call(a, 'POST', '/trust/relationships', { agent: bAgent, kind: 'family' })
    await call(b, 'POST', '/trust/relationships', { agent: aAgent, kind: 'family' })
    for (const [d, other] of [[a, bAgent], [b, aAgent]] as const) {
      await until('the relationship', async () => (await call(d, 'GET', `/trust/agents/${other}`)).relationships?.some((r: any) => r.mutual) === true ? true : undefined, 30_000)
    }
    // B goes away while A writes: when it comes back, it redials A and syncs what it missed
    await b.stop()

    const t0 = performance.now()
    let made = 0
    const ids: string[] = []
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (made < count) {
        const i = made++
        ids[i] = (await call(a, 'POST', `/docs?readers=${bAgent}`, { title: `doc ${i}`, n: i })).id
      }
    }))
    const setupSeconds = (performance.now() - t0) / 1000
    log(`created ${count} documents on A over HTTP in ${setupSeconds.toFixed(1)} s`)

    const aCpu0 = await cpuSeconds(a.pid)
    b = await startHearth(join(work, 'b'), P2P_ENV)
    const bCpu0 = await cpuSeconds(b.pid)
    const session = await until('the initial sync', async () => {
      const st = (await call(b, 'GET', '/p2p/status')).sync
      const s = st.sessions.find((x: any) => x.peer_id === aPeer)
      return st.documents === count && s != null && s.pending === 0 && s.in_flight === 0 ? s : undefined
    }, 1_800_000, 100)
    // from the moment B's session with A opened (B's start and its loading Automerge are not counted)
    const seconds = (Date.now() - Date.parse(session.opened_at)) / 1000
    const cpuMsPerDoc = { sender: (await cpuSeconds(a.pid) - aCpu0) * 1000 / count, receiver: (await cpuSeconds(b.pid) - bCpu0) * 1000 / count }
    const rss = { sender: await rssMb(a.pid), receiver: await rssMb(b.pid) }

    const seen = new Map<string, number>()
    await watchAll(b, seen, controller.signal)
    await new Promise(resolve => setTimeout(resolve, 300))
    const latencies: number[] = []
    for (let i = 0; i < samples; i++) {
      const id = ids[Math.floor(Math.random() * ids.length)]
      seen.delete(id)
      const sent = performance.now()
      await call(a, 'PATCH', `/docs/${id}`, { n: -i })
      const at = await until('the change at B', async () => seen.get(id), 30_000, 1)
      latencies.push(at - sent)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    return { seconds, bytes: session.sent_bytes + session.received_bytes, messages: session.sent_messages + session.received_messages, latenciesMs: latencies, rssMb: rss, setupSeconds, cpuMsPerDoc }
  } finally {
    controller.abort()
    await a.stop()
    await b.stop()
    await rm(work, { recursive: true, force: true })
  }
}
