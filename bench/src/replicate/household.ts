import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { peakRssMb, randomFile } from '../tools.js'
import { addFile, startP2PDaemon } from './hearth.js'
import type { P2PDaemon } from './hearth.js'

export interface HouseholdInit {
  blobs: number
  blobBytes: number
  /** replication pass interval of both daemons, ms */
  intervalMs: number
  timeoutMs: number
}

export interface HouseholdResult {
  addSeconds: number
  /** from the first add until the laptop sees every root `ok` (one proven copy on the server) */
  targetSeconds: number
  afterLastAddSeconds: number
  /** the server's replicas, counted on the server */
  held: number
  laptopRssMb: number
  serverRssMb: number
}

/**
 * One agent, two devices: a laptop that pins `blobs` sovereign blobs and a
 * home server paired to it through an invitation (as `hearth trust invite` /
 * `trust join` do). With a sovereign target of one copy, a root is `ok` on
 * the laptop once the server holds it and has passed a holding proof.
 */
export async function runHousehold (work: string, init: HouseholdInit): Promise<HouseholdResult> {
  const env = { HEARTH_REPLICATION_INTERVAL_MS: String(init.intervalMs), HEARTH_FETCH_TIMEOUT_MS: '60000', HEARTH_REPLICATION_TARGETS: 'sovereign=1' }
  const daemons: P2PDaemon[] = []
  try {
    const laptop = await startP2PDaemon('laptop', join(work, 'laptop'), { ...env, HEARTH_LABELS: 'cluster=laptop' })
    daemons.push(laptop)
    const server = await startP2PDaemon('server', join(work, 'server'), { ...env, HEARTH_LABELS: 'cluster=home', HEARTH_BOOTSTRAP: laptop.addr })
    daemons.push(server)
    await laptop.post('/trust/init')
    const { invitation } = await laptop.post('/trust/invites')
    await server.post('/trust/join', { invitation, name: 'home server' })

    const files = join(work, 'blobs')
    await mkdir(files)
    const t0 = performance.now()
    const cids = new Set<string>()
    for (let i = 0; i < init.blobs; i++) {
      const file = join(files, `${i}.bin`)
      await randomFile(file, init.blobBytes)
      cids.add(await addFile(laptop, file, 'sovereign'))
    }
    const addSeconds = (performance.now() - t0) / 1000
    let targetSeconds: number | undefined
    const deadline = Date.now() + init.timeoutMs
    let last = ''
    while (Date.now() < deadline && targetSeconds == null) {
      const own = ((await laptop.get('/replication/status')).own as any[]).filter(r => cids.has(r.cid))
      const ok = own.filter(r => r.state === 'ok' && r.copies >= 1).length
      last = `${ok} of ${cids.size} ok`
      if (own.length === cids.size && ok === cids.size) targetSeconds = (performance.now() - t0) / 1000
      else await new Promise(resolve => setTimeout(resolve, 250))
    }
    if (targetSeconds == null) throw new Error(`the household did not meet its target within ${init.timeoutMs / 1000} s (${last})`)
    const held = ((await server.get('/replication/status')).roots as any[]).filter(r => cids.has(r.cid) && r.state === 'held').length
    if (held !== cids.size) throw new Error(`the laptop reads every root ok, but the server holds ${held} of ${cids.size}`)
    return { addSeconds, targetSeconds, afterLastAddSeconds: targetSeconds - addSeconds, held, laptopRssMb: await peakRssMb(laptop.pid), serverRssMb: await peakRssMb(server.pid) }
  } finally {
    await Promise.all(daemons.map(async d => await d.stop()))
  }
}
