/**
 * Child process: adds one file with Helia's UnixFS (`@helia/unixfs`, its
 * defaults) into a filesystem blockstore (`blockstore-fs`), the way a Helia
 * node stores an added file, and prints `{ seconds, bytes, cid, peakRssMb }`.
 * An optional third argument, a byte count, runs `recycleFreshMemory` first.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { unixfs } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { recycleFreshMemory } from './recycle.js'

const [file, dir, recycleBytes] = process.argv.slice(2)
const blockstore = new FsBlockstore(dir)
await blockstore.open()
const fs = unixfs({ blockstore })
// as every ingest contender does just before its timed span (see recycle.ts)
if (recycleBytes != null) recycleFreshMemory(join(dirname(dir), `scratch-${process.pid}`), Number(recycleBytes))
const t0 = performance.now()
const cid = await fs.addByteStream(createReadStream(file, { highWaterMark: 1024 * 1024 }))
const seconds = (performance.now() - t0) / 1000
await blockstore.close()
const status = await readFile('/proc/self/status', 'utf8')
const peakRssMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024
process.stdout.write(JSON.stringify({ seconds, bytes: (await stat(file)).size, cid: cid.toString(), peakRssMb }) + '\n')
