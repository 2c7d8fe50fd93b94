/**
 * Child process: the CID computation of one file (1 MiB leaves, BLAKE3 each,
 * the UnixFS DAG; nothing stored), timed inside the process like b3sum's
 * work is, and printed as `{ seconds, cpuSeconds, bytes, cid }` (CPU time of
 * every thread of the process, as bash's time counts b3sum's). A child of
 * its own, as b3sum is, so the runner's heap and timers do not sit on its
 * path.
 *
 * By default `hashFile` (what `hearth add --only-hash` runs: runs of leaves
 * on libuv's thread pool through the leaf-hash addon); with `dag`, the add
 * path's `buildDag(fileSource())` (one leaf at a time, read and hashed on
 * the pool); with `stream`, `buildDag` of a Node file stream (hashed on the
 * main thread).
 */
import { createReadStream } from 'node:fs'
import { buildDag, fileSource, hashFile } from '@hearth/blobstore'

const [file, how] = process.argv.slice(2)
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const result = how === 'stream'
  ? await buildDag(createReadStream(file, { highWaterMark: 1024 * 1024 }), { put: () => {} })
  : how === 'dag' ? await buildDag(fileSource(file), { put: () => {} }) : await hashFile(file)
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes: result.size, cid: result.cid.toString() }) + '\n')
