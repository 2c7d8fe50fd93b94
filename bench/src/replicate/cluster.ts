import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { median } from '../lib.js'
import { peakRssMb, randomFile } from '../tools.js'
import { addFile, startP2PDaemon, waitUntil } from './hearth.js'
import type { P2PDaemon } from './hearth.js'

export interface ClusterInit {
  daemons: number
  blobs: number
  blobBytes: number
  /** replication pass interval of every daemon, ms */
  intervalMs: number
  timeoutMs: number
}

export interface ClusterResult {
  /** from the first add until every root's owner sees its target met */
  targetSeconds: number
  /** from the first add until every holder of every root has passed a holding proof */
  provenSeconds: number
  addSeconds: number
  /** from the last add until every root's owner sees its target met */
  afterLastAddSeconds: number
  peakRssMb: number[]
  copies: number
}

/**
 * Ten daemons (five racks of two), one agent each; every agent grants every
 * other `reciprocal` storage; each pins its share of the blobs. The owner
 * of each root watches its own view: a root meets its target when the
 * default two copies are confirmed on other agents' nodes (rendezvous
 * placement over racks).
 */
export async function runCluster (work: string, init: ClusterInit): Promise<ClusterResult> {
  const daemons: P2PDaemon[] = []
  const env = { HEARTH_REPLICATION_INTERVAL_MS: String(init.intervalMs), HEARTH_FETCH_TIMEOUT_MS: '60000' }
  try {
    daemons.push(await startP2PDaemon('d0', join(work, 'd0'), { ...env, HEARTH_LABELS: 'rack=r0' }))
    daemons.push(...await Promise.all(Array.from({ length: init.daemons - 1 }, async (_, i) =>
      await startP2PDaemon(`d${i + 1}`, join(work, `d${i + 1}`), { ...env, HEARTH_LABELS: `rack=r${Math.floor((i + 1) / 2)}`, HEARTH_BOOTSTRAP: daemons[0].addr }))))
    const agents = await Promise.all(daemons.map(async d => (await d.post('/trust/init')).agent_id as string))
    await waitUntil(async () => (await Promise.all(daemons.map(async d => (await d.get('/trust/graph')).counts.agents))).every(n => n >= init.daemons), 120_000, 'every daemon to know every agent')
    for (const [i, d] of daemons.entries()) {
      for (const [j, a] of agents.entries()) if (i !== j) await d.post('/trust/grants', { agent: a, layer: 'reciprocal', quota: '8GiB' })
    }
    const grants = init.daemons * (init.daemons - 1)
    let seen: number[] = []
    await waitUntil(async () => (seen = await Promise.all(daemons.map(async d => (await d.get('/trust/graph')).counts.grants))).every(n => n >= grants), 120_000, 'every daemon to know every grant')
      .catch(err => { throw new Error(`${err.message}: ${grants} grants, the daemons know ${seen.join(', ')}`) })

    const files = join(work, 'blobs')
    await mkdir(files)
    const t0 = performance.now()
    const owned: Array<{ owner: P2PDaemon, cid: string }> = []
    for (let i = 0; i < init.blobs; i++) {
      const file = join(files, `${i}.bin`)
      await randomFile(file, init.blobBytes)
      const owner = daemons[i % daemons.length]
      owned.push({ owner, cid: await addFile(owner, file, 'reciprocal') })
    }
    const addSeconds = (performance.now() - t0) / 1000
    let targetSeconds: number | undefined
    let provenSeconds: number | undefined
    let copies = 0
    const deadline = Date.now() + init.timeoutMs
    while (Date.now() < deadline && provenSeconds == null) {
      const views = new Map<P2PDaemon, Map<string, any>>()
      for (const d of daemons) views.set(d, new Map((await d.get('/replication/status')).own.map((r: any) => [r.cid, r])))
      const rows = owned.map(o => views.get(o.owner)!.get(o.cid))
      if (targetSeconds == null && rows.every(r => r?.state === 'ok')) {
        targetSeconds = (performance.now() - t0) / 1000
        copies = rows.reduce((n, r) => n + r.holders.filter((h: any) => h.confirmed).length, 0)
      }
      if (targetSeconds != null && rows.every(r => r?.state === 'ok' && r.holders.filter((h: any) => h.confirmed && h.proof?.result === 'ok').length >= r.target)) {
        provenSeconds = (performance.now() - t0) / 1000
      }
      if (provenSeconds == null) await new Promise(resolve => setTimeout(resolve, 250))
    }
    if (targetSeconds == null || provenSeconds == null) throw new Error(`the cluster did not meet every target within ${init.timeoutMs / 1000} s`)
    const rss = await Promise.all(daemons.map(async d => await peakRssMb(d.pid)))
    return { targetSeconds, provenSeconds, addSeconds, afterLastAddSeconds: targetSeconds - addSeconds, peakRssMb: rss, copies }
  } finally {
    await Promise.all(daemons.map(async d => await d.stop()))
  }
}

export function summarizeRss (rss: number[]): { max: number, median: number } {
  return { max: Math.max(...rss), median: median(rss) }
}
