/**
 * Child process: the store's CID computation of one file (read, cut into
 * 1 MiB leaves, BLAKE3 each, build the UnixFS DAG; nothing stored), timed
 * inside the process like b3sum's work is, and printed as
 * `{ seconds, cpuSeconds, bytes, cid }` (CPU time of every thread of the
 * process, as bash's time counts b3sum's). A child of its own, as b3sum is, so the runner's
 * heap and timers do not sit on its path. The source is `fileSource`, or with
 * `stream` a Node file stream.
 */
import { createReadStream } from 'node:fs'
import { buildDag, fileSource } from '@hearth/blobstore'

const [file, how] = process.argv.slice(2)
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const source = how === 'stream' ? createReadStream(file, { highWaterMark: 1024 * 1024 }) : fileSource(file)
const result = await buildDag(source, { put: () => {} })
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes: result.size, cid: result.cid.toString() }) + '\n')
