/**
 * Child process: adds one file to a fresh Hearth blob store and prints
 * `{ seconds, cpuSeconds, closeSeconds, bytes, cid, peakRssMb }`. Run apart from the
 * benchmark runner so its peak RSS is the store's alone.
 *
 * `seconds` runs until the add resolves, which is after its durable commit;
 * `closeSeconds` is what the store still had to do afterwards (with a WAL it
 * was the checkpoint's second copy of every page; now it should be nothing).
 * The source is `fileSource` (large reads into reused buffers), or with
 * `stream` as the third argument a Node file stream (a fresh buffer per read).
 * A fourth argument, a byte count, runs `recycleFreshMemory` of that many
 * bytes just before the timed span (the ingest runs; not the peak-RSS one).
 */
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createBlobStore, fileSource } from '@hearth/blobstore'
import { recycleFreshMemory } from './recycle.js'

const [file, dbPath, how, recycleBytes] = process.argv.slice(2)
const store = createBlobStore({ path: dbPath })
if (recycleBytes != null) recycleFreshMemory(join(dirname(dbPath), 'scratch'), Number(recycleBytes))
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const source = how === 'stream' ? createReadStream(file, { highWaterMark: 1024 * 1024 }) : fileSource(file)
const result = await store.add(source, { layer: 'sovereign' })
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
const cpuSeconds = (cpu.user + cpu.system) / 1e6
const t1 = performance.now()
await store.close()
const closeSeconds = (performance.now() - t1) / 1000
const status = await readFile('/proc/self/status', 'utf8')
const peakRssMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024
process.stdout.write(JSON.stringify({ seconds, cpuSeconds, closeSeconds, bytes: result.size, cid: result.cid.toString(), peakRssMb }) + '\n')
