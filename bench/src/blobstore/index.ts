import { chmod, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from '../lib.js'
import { recycleFreshMemory } from './recycle.js'
import type { Measurement, Ratio, Scenario } from '../lib.js'
import { MiB, cpuTimed, curlSpeed, randomFile, requireTools, startHearth, startNginx, timed, wrkRps } from '../tools.js'

interface IngestResult { seconds: number, cpuSeconds: number, closeSeconds: number, bytes: number, cid: string, peakRssMb: number }
interface HashResult { seconds: number, cpuSeconds: number, bytes: number, cid: string }

const child = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url))

async function runChild<T = IngestResult> (script: string, args: string[]): Promise<T> {
  const { stdout } = await timed(process.execPath, [child(script), ...args])
  return JSON.parse(stdout.trim().split('\n').pop()!)
}

const mibps = (bytes: number, seconds: number): number => bytes / MiB / seconds

/**
 * Reads a file once so every contender starts with it in the page cache.
 * (tools' `warm` collects cat's output into a string, which fails past
 * V8's 512 MiB string limit: the full 1 GiB run could not start.)
 */
async function warmFile (path: string): Promise<void> {
  await timed('sh', ['-c', 'cat "$1" > /dev/null', 'sh', path])
}

const scenario: Scenario = {
  name: 'blobstore',
  description: 'ingest, hashing, HTTP GET and peak RSS of the blob store against cp+sync, b3sum, nginx and Helia',
  run: async ({ quick }) => {
    requireTools('b3sum', 'nginx', 'wrk', 'curl')
    const loadAtStart = loadavg()
    const size = quick ? 256 * MiB : 1024 * MiB
    const rssSize = quick ? 512 * MiB : 2048 * MiB
    // shared machines: more runs than looks necessary, and the ranges go in the notes
    const runs = Number(process.env.HEARTH_BENCH_RUNS ?? (quick ? 3 : 5))
    const work = await mkdtemp(join(tmpdir(), 'hearth-bench-blobs-'))
    // nginx's workers drop to an unprivileged user: they must be able to read the files
    await chmod(work, 0o755)
    const m: Measurement[] = []
    const notes: string[] = []
    try {
      const file = join(work, 'random.bin')
      await randomFile(file, size)
      await warmFile(file)
      const label = `${size / MiB} MiB`

      // 1. ingest: cp + sync against the store, each into a fresh target
      const cp: number[] = []
      const cpCpu: number[] = []
      const ours: number[] = []
      const oursCpu: number[] = []
      const oursStream: number[] = []
      const drain: number[] = []
      const helia: number[] = []
      // Each timed write starts after a `sync` of everything, so none pays
      // for another's writeback or discards (ext4 with `discard` here), and
      // right after a scratch write of a little more than it will write
      // (recycle.ts), so every contender's new page cache comes from memory
      // that was in use a moment ago, not from memory the VM handed back to
      // its host (a host fault per page). The order of the contenders also
      // turns by one each run, so none is always first
      const settle = async (): Promise<void> => { await timed('sync', []) }
      const recycleBytes = Math.round(size * 1.25)
      const contenders: Array<(i: number) => Promise<void>> = [
        async (i) => {
          const dst = join(work, `copy-${i}.bin`)
          recycleFreshMemory(join(work, 'scratch'), recycleBytes)
          const c = await cpuTimed('sh', ['-c', `cp "${file}" "${dst}" && sync "${dst}"`])
          cp.push(mibps(size, c.seconds))
          cpCpu.push(mibps(size, c.cpuSeconds))
          await rm(dst)
        },
        ...(['file', 'stream'] as const).map(how => async (i: number) => {
          const db = join(work, `store-${i}`, 'blobs.db')
          await mkdir(join(work, `store-${i}`))
          const r = await runChild('ingest-hearth', [file, db, how, String(recycleBytes)])
          if (how === 'file') {
            ours.push(mibps(r.bytes, r.seconds))
            drain.push(r.closeSeconds)
            oursCpu.push(mibps(r.bytes, r.cpuSeconds))
          } else {
            oursStream.push(mibps(r.bytes, r.seconds))
          }
          await rm(join(work, `store-${i}`), { recursive: true })
        }),
        async (i) => {
          const hdir = join(work, `helia-${i}`)
          const h = await runChild('ingest-helia', [file, hdir, String(recycleBytes)])
          helia.push(mibps(h.bytes, h.seconds))
          await rm(hdir, { recursive: true })
        }
      ]
      for (let i = 0; i < runs; i++) {
        for (let k = 0; k < contenders.length; k++) {
          await settle()
          await contenders[(i + k) % contenders.length](i)
        }
      }
      m.push({ name: `cp + sync, ${label}`, value: median(cp), unit: 'MiB/s' })
      m.push({ name: `hearth store add, ${label}`, value: median(ours), unit: 'MiB/s' })
      m.push({ name: `hearth store add from fs.createReadStream, ${label}`, value: median(oursStream), unit: 'MiB/s' })
      m.push({ name: 'hearth store close after the add (work left behind)', value: median(drain), unit: 's' })
      m.push({ name: 'cp + sync, per CPU-second', value: median(cpCpu), unit: 'MiB/s' })
      m.push({ name: 'hearth store add, per CPU-second', value: median(oursCpu), unit: 'MiB/s' })
      m.push({ name: `helia unixfs add into blockstore-fs, ${label}`, value: median(helia), unit: 'MiB/s' })
      const each = (xs: number[], ys: number[]): string => xs.map((x, i) => (x / ys[i]).toFixed(2)).join(', ')
      notes.push(`ingest runs (MiB/s): cp+sync ${cp.map(Math.round).join(', ')}; hearth ${ours.map(Math.round).join(', ')}; from a file stream ${oursStream.map(Math.round).join(', ')}; helia ${helia.map(Math.round).join(', ')}`)
      notes.push(`ingest ratio per run: hearth / cp+sync ${each(ours, cp)}; hearth / helia ${each(ours, helia)}`)

      // 2. hashing: the CID computation of a file (hashFile: runs of leaves
      // on libuv's pool, several at once; and the add path's buildDag of a
      // fileSource, one leaf read and hashed at a time)
      // against b3sum on one thread. b3sum reads a file through mmap by
      // default; with --no-mmap it reads into a small buffer and is faster
      // here (no page faults): the baseline is the faster of the two
      const b3: number[] = []
      const b3read: number[] = []
      const b3readCpu: number[] = []
      const dag: number[] = []
      const dagCpu: number[] = []
      const dagStream: number[] = []
      const dagOne: number[] = []
      for (let i = 0; i < runs; i++) {
        b3.push(mibps(size, (await cpuTimed('b3sum', ['--num-threads', '1', file])).seconds))
        const r = await cpuTimed('b3sum', ['--num-threads', '1', '--no-mmap', file])
        b3read.push(mibps(size, r.seconds))
        b3readCpu.push(mibps(size, r.cpuSeconds))
        const h = await runChild<HashResult>('hash-hearth', [file])
        dag.push(mibps(size, h.seconds))
        dagCpu.push(mibps(size, h.cpuSeconds))
        dagOne.push(mibps(size, (await runChild<HashResult>('hash-hearth', [file, 'dag'])).seconds))
        dagStream.push(mibps(size, (await runChild<HashResult>('hash-hearth', [file, 'stream'])).seconds))
      }
      const b3best = median(b3read) > median(b3) ? 'b3sum --num-threads 1 --no-mmap' : 'b3sum --num-threads 1'
      m.push({ name: 'b3sum --num-threads 1', value: median(b3), unit: 'MiB/s' })
      m.push({ name: 'b3sum --num-threads 1 --no-mmap', value: median(b3read), unit: 'MiB/s' })
      m.push({ name: 'b3sum --num-threads 1 --no-mmap, per CPU-second', value: median(b3readCpu), unit: 'MiB/s' })
      m.push({ name: 'hearth CID computation (hashFile)', value: median(dag), unit: 'MiB/s' })
      m.push({ name: 'hearth CID computation, per CPU-second', value: median(dagCpu), unit: 'MiB/s' })
      m.push({ name: 'hearth CID computation as an add reads (buildDag of a fileSource)', value: median(dagOne), unit: 'MiB/s' })
      m.push({ name: 'hearth CID computation from fs.createReadStream', value: median(dagStream), unit: 'MiB/s' })
      notes.push(`hashing runs (MiB/s): b3sum ${b3.map(Math.round).join(', ')}; b3sum --no-mmap ${b3read.map(Math.round).join(', ')}; hearth hashFile ${dag.map(Math.round).join(', ')}; buildDag of a fileSource ${dagOne.map(Math.round).join(', ')}; from a file stream ${dagStream.map(Math.round).join(', ')}`)
      notes.push(`hashing ratio per run against ${b3best}: ${each(dag, b3best.endsWith('--no-mmap') ? b3read : b3)}; buildDag of a fileSource ${each(dagOne, b3best.endsWith('--no-mmap') ? b3read : b3)}; hashFile per CPU-second against b3sum --no-mmap: ${each(dagCpu, b3readCpu)}`)
      notes.push('hashFile hashes runs of 16 leaves on libuv\'s thread pool (the @hearth/leaf-hash addon; two runs per core in flight), each thread reading 64 KiB at a time and hashing it while it is in cache as b3sum does; b3sum runs on one thread, so the per-CPU-second ratio is the like-for-like one. buildDag of a fileSource is what an add does: one leaf at a time read and hashed on the pool while the one before is stored')

      // 3. HTTP: the daemon against nginx serving the same bytes
      const www = join(work, 'www')
      await mkdir(www)
      await symlink(file, join(www, 'big.bin'))
      await randomFile(join(www, 'small.bin'), 4096)
      const nginx = await startNginx(www, work)
      const daemon = await startHearth(join(work, 'daemon'))
      try {
        const up = await timed('curl', ['-sS', '--fail', '-X', 'POST', '-T', file, '-H', `authorization: Bearer ${daemon.token}`, '-H', 'content-type: application/octet-stream', `${daemon.url}/blob`])
        const bigCid = JSON.parse(up.stdout).cid
        m.push({ name: `hearth POST /blob (curl upload), ${label}`, value: mibps(size, up.seconds), unit: 'MiB/s' })
        const small = await timed('curl', ['-sS', '--fail', '-X', 'POST', '--data-binary', `@${join(www, 'small.bin')}`, '-H', `authorization: Bearer ${daemon.token}`, `${daemon.url}/blob`])
        const smallCid = JSON.parse(small.stdout).cid

        const getN: number[] = []
        const getH: number[] = []
        await curlSpeed(`${nginx.url}/big.bin`)
        await curlSpeed(`${daemon.url}/blob/${bigCid}`)
        for (let i = 0; i < runs; i++) {
          getN.push((await curlSpeed(`${nginx.url}/big.bin`)).bytesPerSecond / MiB)
          getH.push((await curlSpeed(`${daemon.url}/blob/${bigCid}`)).bytesPerSecond / MiB)
        }
        m.push({ name: `nginx GET, ${label}`, value: median(getN), unit: 'MiB/s' })
        m.push({ name: `hearth GET /blob, ${label}`, value: median(getH), unit: 'MiB/s' })

        const secs = quick ? 5 : 10
        const rpsN = await wrkRps(`${nginx.url}/small.bin`, secs)
        const rpsH = await wrkRps(`${daemon.url}/blob/${smallCid}`, secs)
        m.push({ name: 'nginx 4 KiB GET (wrk -t2 -c64)', value: rpsN, unit: 'req/s' })
        m.push({ name: 'hearth 4 KiB GET /blob (wrk -t2 -c64)', value: rpsH, unit: 'req/s' })
      } finally {
        await daemon.stop()
        await nginx.stop()
      }

      // 4. peak RSS while ingesting a larger file
      const rssFile = join(work, 'rss.bin')
      await rm(file)
      await randomFile(rssFile, rssSize)
      await mkdir(join(work, 'rss-store'))
      const rss = await runChild('ingest-hearth', [rssFile, join(work, 'rss-store', 'blobs.db')])
      m.push({ name: `hearth store add peak RSS, ${rssSize / MiB} MiB`, value: rss.peakRssMb, unit: 'MB' })
      notes.push(`peak RSS is the child process's VmHWM (Node itself idles near 45 MB)`)

      const get = (name: string): number => m.find(x => x.name === name)!.value
      const ratios: Ratio[] = [
        { name: 'ingest: store / cp+sync', ours: `hearth store add, ${label}`, baseline: `cp + sync, ${label}`, ratio: get(`hearth store add, ${label}`) / get(`cp + sync, ${label}`), target: 0.75 },
        { name: 'hashing: CID computation / b3sum -t1 (faster mode)', ours: 'hearth CID computation (hashFile)', baseline: b3best, ratio: get('hearth CID computation (hashFile)') / get(b3best), target: 0.9 },
        { name: 'hashing as an add reads: buildDag / b3sum -t1 (faster mode)', ours: 'hearth CID computation as an add reads (buildDag of a fileSource)', baseline: b3best, ratio: get('hearth CID computation as an add reads (buildDag of a fileSource)') / get(b3best) },
        { name: 'hashing per CPU-second: hearth / b3sum -t1 --no-mmap', ours: 'hearth CID computation, per CPU-second', baseline: 'b3sum --num-threads 1 --no-mmap, per CPU-second', ratio: get('hearth CID computation, per CPU-second') / get('b3sum --num-threads 1 --no-mmap, per CPU-second') },
        { name: 'GET 1 blob: hearth / nginx', ours: `hearth GET /blob, ${label}`, baseline: `nginx GET, ${label}`, ratio: get(`hearth GET /blob, ${label}`) / get(`nginx GET, ${label}`), target: 0.5 },
        { name: '4 KiB GETs: hearth / nginx', ours: 'hearth 4 KiB GET /blob (wrk -t2 -c64)', baseline: 'nginx 4 KiB GET (wrk -t2 -c64)', ratio: get('hearth 4 KiB GET /blob (wrk -t2 -c64)') / get('nginx 4 KiB GET (wrk -t2 -c64)') },
        { name: 'ingest: hearth / helia', ours: `hearth store add, ${label}`, baseline: `helia unixfs add into blockstore-fs, ${label}`, ratio: get(`hearth store add, ${label}`) / get(`helia unixfs add into blockstore-fs, ${label}`), target: 2 },
        { name: 'peak RSS ingesting / 200 MB target', ours: `hearth store add peak RSS, ${rssSize / MiB} MiB`, baseline: 'target', ratio: rss.peakRssMb / 200, target: 1, atMost: true }
      ]
      notes.push(`${runs} runs each, medians; the source file is in the page cache for every contender; load average ${loadAtStart.map(x => x.toFixed(2)).join(' ')} at the start, ${loadavg().map(x => x.toFixed(2)).join(' ')} at the end`)
      return { measurements: m, ratios, notes }
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }
}

export default scenario
