import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { median } from '../lib.js'
import type { Measurement, Ratio, Scenario } from '../lib.js'
import { MiB, peakRssMb, randomFile, requireTools, warm } from '../tools.js'
import { child } from './children.js'
import { runCluster, summarizeRss } from './cluster.js'
import { addFile, fetchOnce, readThroughOnce, startP2PDaemon } from './hearth.js'
import { runHousehold } from './household.js'

const mibps = (bytes: number, seconds: number): number => bytes / MiB / seconds
/** a Helia fetch still running after this long is stopped */
const HELIA_LIMIT_S = 150
const load = (): string => loadavg().map(n => n.toFixed(2)).join(' ')

/** The plain TCP copy: file → socket → file + fsync (or socket only with `out` = '-'). */
async function tcpCopy (file: string, out: string): Promise<number> {
  const rx = child('tcp-child', ['receive', out])
  const { port } = await rx.next<{ port: number }>()
  const tx = child('tcp-child', ['send', String(port), file])
  const r = await rx.next<{ seconds: number, bytes: number }>()
  await Promise.all([rx.done, tx.done])
  return mibps(r.bytes, r.seconds)
}

const scenario: Scenario = {
  name: 'replicate',
  description: 'one blob between two daemons (pinned, and streamed to a client by read-through) against a plain TCP copy and Helia over Bitswap; a household of two devices and ten daemons replicating 200 pinned blobs to their targets',
  run: async ({ quick }) => {
    requireTools('curl')
    const size = quick ? 256 * MiB : 1024 * MiB
    const runs = quick ? 2 : 3
    const label = size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`
    const work = await mkdtemp(join(tmpdir(), 'hearth-bench-repl-'))
    const m: Measurement[] = []
    const notes: string[] = [`load average at start: ${load()}`]
    const stops: Array<() => Promise<void>> = []
    try {
      const file = join(work, 'random.bin')
      await randomFile(file, size)
      await warm(file)

      // (a) one blob, three ways, interleaved run by run so that machine noise hits all of them alike.
      // Each run's Hearth source is a fresh daemon that has just added the file, as each run's Helia
      // sender is and each TCP copy's sender is a fresh process. A long-running source, idle through
      // the other contenders' runs, is measured beside it: on these VMs a daemon that sat idle for a
      // minute serves the next fetch with up to 2.5× the CPU (memory it touches again costs the host
      // a fault per page), which no fresh process pays.
      const longSource = await startP2PDaemon('source', join(work, 'source'))
      stops.push(async () => { await longSource.stop() })
      const cid = await addFile(longSource, file, 'gift')
      const ours: number[] = []
      const oursLong: number[] = []
      const sourceRss: number[] = []
      const readFirst: number[] = []
      const readTotal: number[] = []
      const readerRss: number[] = []
      const tcp: number[] = []
      const socket: number[] = []
      const heliaRates: number[] = []
      const fetcherRss: number[] = []
      const heliaFetchRss: number[] = []
      const heliaSendRss: number[] = []
      let heliaStalled = false
      for (let i = 0; i < runs; i++) {
        tcp.push(await tcpCopy(file, join(work, 'tcp-copy.bin')))
        await rm(join(work, 'tcp-copy.bin'), { force: true })
        socket.push(await tcpCopy(file, '-'))
        const source = await startP2PDaemon(`source-${i}`, join(work, `source-${i}`))
        try {
          if (await addFile(source, file, 'gift') !== cid) throw new Error('the fresh source gave the file another CID')
          await new Promise(resolve => setTimeout(resolve, 3000)) // the add's last flush settles, as it had for the long-running source
          const h = await fetchOnce(source, cid, join(work, `fetch-${i}`))
          ours.push(mibps(size, h.seconds))
          fetcherRss.push(h.fetcherRssMb)
          sourceRss.push(await peakRssMb(source.pid))
        } finally {
          await source.stop()
          await rm(join(work, `source-${i}`), { recursive: true, force: true })
          await rm(join(work, `fetch-${i}`), { recursive: true, force: true })
        }
        const l = await fetchOnce(longSource, cid, join(work, `fetch-long-${i}`))
        oursLong.push(mibps(size, l.seconds))
        await rm(join(work, `fetch-long-${i}`), { recursive: true, force: true })
        // a read-through: a client's GET on a daemon that lacks the blob, streamed as blocks arrive
        const out = join(work, `read-${i}.bin`)
        const rt = await readThroughOnce(longSource, cid, join(work, `read-${i}`), out)
        if (rt.bytes !== size) throw new Error(`the read-through gave ${rt.bytes} bytes, not ${size}`)
        readFirst.push(rt.firstByteSeconds)
        readTotal.push(mibps(size, rt.seconds))
        readerRss.push(rt.fetcherRssMb)
        await rm(join(work, `read-${i}`), { recursive: true, force: true })
        await rm(out, { force: true })
        const run = `run ${i + 1}: tcp copy ${tcp[i].toFixed(0)}, socket ${socket[i].toFixed(0)}, hearth ${ours[i].toFixed(1)} (long-running source ${oursLong[i].toFixed(1)}), read-through ${readTotal[i].toFixed(1)} MiB/s, first byte ${(readFirst[i] * 1000).toFixed(0)} ms`
        if (heliaStalled) {
          notes.push(`${run} MiB/s; helia not run again after it stalled (load ${load()})`)
          console.log(notes[notes.length - 1])
          continue
        }
        // a fresh Helia pair each run (a sender left idle for minutes stopped answering Bitswap here)
        const heliaSend = child('helia-child', ['send', join(work, `helia-send-${i}`), file])
        const helia = await heliaSend.next<{ cid: string, addr: string }>()
        const hf = child('helia-child', ['fetch', join(work, `helia-fetch-${i}`), helia.addr, helia.cid])
        const timer = setTimeout(() => { hf.proc.kill('SIGKILL') }, HELIA_LIMIT_S * 1000)
        const r = await hf.next<{ seconds: number, bytes: number, peakRssMb: number }>().catch(() => undefined)
        clearTimeout(timer)
        await hf.done
        heliaSend.proc.stdin!.write('quit\n')
        heliaSendRss.push((await heliaSend.next<{ peakRssMb: number }>()).peakRssMb)
        await heliaSend.done
        await rm(join(work, `helia-send-${i}`), { recursive: true, force: true })
        if (r == null) {
          // Helia's Bitswap stopped moving blocks: what it managed is at most size / limit
          heliaStalled = true
          heliaRates.push(mibps(size, HELIA_LIMIT_S))
          notes.push(`helia did not finish the ${label} fetch within ${HELIA_LIMIT_S} s (its Bitswap stalled after the root here); its figure is the bound ${label} / ${HELIA_LIMIT_S} s, so the hearth / helia ratio is a lower bound`)
        } else {
          if (r.bytes !== size) throw new Error(`helia fetched ${r.bytes} bytes, not ${size}`)
          heliaRates.push(mibps(size, r.seconds))
          heliaFetchRss.push(r.peakRssMb)
        }
        await rm(join(work, `helia-fetch-${i}`), { recursive: true, force: true })
        notes.push(`${run}, helia ${heliaRates[heliaRates.length - 1].toFixed(1)}${heliaStalled ? ' (bound)' : ''} MiB/s (load ${load()})`)
        console.log(notes[notes.length - 1])
      }
      const longSourceRss = await peakRssMb(longSource.pid)
      await longSource.stop()
      await rm(join(work, 'source'), { recursive: true, force: true })

      const names = {
        ours: `hearth → hearth, ${label} (POST /pins of a root only the source has)`,
        read: `hearth read-through, ${label} (curl GET /blob on a daemon that lacks it, into a file)`,
        readFirst: `hearth read-through, ${label}: time to first byte`,
        oursLong: `hearth → hearth, ${label}, from a long-running source idle between runs`,
        tcp: `plain TCP copy, ${label} (net socket, file → file + fsync)`,
        socket: `plain TCP socket only, ${label} (no disk)`,
        helia: `helia → helia over bitswap, ${label}`
      }
      m.push({ name: names.tcp, value: median(tcp), unit: 'MiB/s' })
      m.push({ name: names.socket, value: median(socket), unit: 'MiB/s' })
      m.push({ name: names.ours, value: median(ours), unit: 'MiB/s' })
      m.push({ name: names.oursLong, value: median(oursLong), unit: 'MiB/s' })
      m.push({ name: names.helia, value: median(heliaRates), unit: 'MiB/s' })
      m.push({ name: names.read, value: median(readTotal), unit: 'MiB/s' })
      m.push({ name: names.readFirst, value: median(readFirst) * 1000, unit: 'ms' })
      m.push({ name: 'hearth read-through daemon peak RSS', value: Math.max(...readerRss), unit: 'MB' })
      m.push({ name: 'hearth fetcher peak RSS', value: Math.max(...fetcherRss), unit: 'MB' })
      m.push({ name: 'hearth source peak RSS (add + serving one fetch)', value: Math.max(...sourceRss), unit: 'MB' })
      m.push({ name: 'hearth long-running source peak RSS (add + serving every run)', value: longSourceRss, unit: 'MB' })
      if (heliaFetchRss.length > 0) m.push({ name: 'helia fetcher peak RSS', value: Math.max(...heliaFetchRss), unit: 'MB' })
      m.push({ name: 'helia sender peak RSS (import + serving one fetch)', value: Math.max(...heliaSendRss), unit: 'MB' })
      notes.push(`hearth ranges ${Math.min(...ours).toFixed(1)}–${Math.max(...ours).toFixed(1)} (long-running source ${Math.min(...oursLong).toFixed(1)}–${Math.max(...oursLong).toFixed(1)}), helia ${Math.min(...heliaRates).toFixed(1)}–${Math.max(...heliaRates).toFixed(1)}, tcp copy ${Math.min(...tcp).toFixed(0)}–${Math.max(...tcp).toFixed(0)} MiB/s over ${runs} runs (medians in the table)`)

      // (b) a household: laptop and home server under one agent, every sovereign root onto the server
      const house = quick ? { blobs: 48, blobBytes: 256 * 1024 } : { blobs: 200, blobBytes: MiB }
      await mkdir(join(work, 'household'))
      console.log(`household of 2 devices, ${house.blobs} blobs (load ${load()})…`)
      const h = await runHousehold(join(work, 'household'), { ...house, intervalMs: 1000, timeoutMs: 600_000 })
      const hl = `household (laptop + server, one agent), ${house.blobs} sovereign blobs of ${house.blobBytes / 1024} KiB`
      m.push({ name: `${hl}: adding them`, value: h.addSeconds, unit: 's' })
      m.push({ name: `${hl}: every root ok (1 proven copy on the server)`, value: h.targetSeconds, unit: 's' })
      m.push({ name: `${hl}: every root ok, after the last add`, value: h.afterLastAddSeconds, unit: 's' })
      m.push({ name: `${hl}: peak RSS laptop / server`, value: Math.max(h.laptopRssMb, h.serverRssMb), unit: 'MB' })
      notes.push(`household: replication passes every 1 s, HEARTH_REPLICATION_TARGETS=sovereign=1, times from the first add; the server holds ${h.held} roots; peak RSS laptop ${h.laptopRssMb.toFixed(0)} MB, server ${h.serverRssMb.toFixed(0)} MB`)

      // (c) ten daemons, every root to its target
      const cluster = quick ? { daemons: 6, blobs: 48, blobBytes: 256 * 1024 } : { daemons: 10, blobs: 200, blobBytes: MiB }
      await mkdir(join(work, 'cluster'))
      console.log(`cluster of ${cluster.daemons} daemons, ${cluster.blobs} blobs (load ${load()})…`)
      const c = await runCluster(join(work, 'cluster'), { ...cluster, intervalMs: 1000, timeoutMs: 600_000 })
      const rss = summarizeRss(c.peakRssMb)
      const cl = `${cluster.daemons} daemons, ${cluster.blobs} blobs of ${cluster.blobBytes / 1024} KiB`
      m.push({ name: `${cl}: adding them`, value: c.addSeconds, unit: 's' })
      m.push({ name: `${cl}: every root at its target (2 copies)`, value: c.targetSeconds, unit: 's' })
      m.push({ name: `${cl}: every root at its target, after the last add`, value: c.afterLastAddSeconds, unit: 's' })
      m.push({ name: `${cl}: every holder proven`, value: c.provenSeconds, unit: 's' })
      m.push({ name: `${cl}: peak RSS per daemon, max`, value: rss.max, unit: 'MB' })
      m.push({ name: `${cl}: peak RSS per daemon, median`, value: rss.median, unit: 'MB' })
      notes.push(`cluster: replication passes every 1 s (the default is 30 s), times from the first add; ${c.copies} confirmed copies; per-daemon peak RSS ${c.peakRssMb.map(n => n.toFixed(0)).join(', ')} MB`)
      notes.push(`load average at the end: ${load()}`)

      const get = (name: string): number => m.find(x => x.name === name)!.value
      const ratios: Ratio[] = [
        { name: 'one blob: hearth / helia bitswap', ours: names.ours, baseline: names.helia, ratio: get(names.ours) / get(names.helia), target: 2 },
        { name: 'one blob: hearth / plain TCP copy', ours: names.ours, baseline: names.tcp, ratio: get(names.ours) / get(names.tcp), target: 0.3 },
        { name: 'one blob: hearth / plain TCP socket (no disk)', ours: names.ours, baseline: names.socket, ratio: get(names.ours) / get(names.socket) },
        { name: 'read-through, whole transfer: hearth / plain TCP copy', ours: names.read, baseline: names.tcp, ratio: get(names.read) / get(names.tcp) },
        { name: 'read-through: first byte / whole transfer time', ours: names.readFirst, baseline: names.read, ratio: (get(names.readFirst) / 1000) / (size / MiB / get(names.read)), target: 0.25, atMost: true },
        { name: 'one blob from a long-running source: hearth / plain TCP copy', ours: names.oursLong, baseline: names.tcp, ratio: get(names.oursLong) / get(names.tcp) }
      ]
      return { measurements: m, ratios, notes }
    } finally {
      for (const stop of stops) await stop().catch(() => {})
      await rm(work, { recursive: true, force: true })
    }
  }
}

export default scenario
