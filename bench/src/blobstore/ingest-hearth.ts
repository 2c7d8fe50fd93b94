/**
 * Child process: adds one file to a fresh Hearth blob store and prints
 * `{ seconds, bytes, cid, peakRssMb }`. Run apart from the benchmark runner so
 * its peak RSS is the store's alone.
 */
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createBlobStore } from '@hearth/blobstore'

const [file, dbPath] = process.argv.slice(2)
const store = createBlobStore({ path: dbPath })
const t0 = performance.now()
const result = await store.add(createReadStream(file, { highWaterMark: 1024 * 1024 }), { layer: 'sovereign' })
const seconds = (performance.now() - t0) / 1000
await store.close()
const status = await readFile('/proc/self/status', 'utf8')
const peakRssMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024
process.stdout.write(JSON.stringify({ seconds, bytes: result.size, cid: result.cid.toString(), peakRssMb }) + '\n')
