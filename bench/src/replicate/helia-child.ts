/**
 * Child process: one Helia 7 node with a filesystem blockstore, talking
 * Bitswap over TCP + Noise + Yamux on loopback, the way two Helia nodes move
 * a file. Roles:
 *
 * - `send <dir> <file>`: imports the file with @helia/unixfs (its defaults)
 *   and prints `{ cid, addr }`; on a line on stdin it prints its peak RSS and exits.
 * - `fetch <dir> <addr> <cid>`: dials the sender, reads the file through
 *   (every block fetched over Bitswap into its blockstore), pins it, and prints
 *   `{ seconds, bytes, peakRssMb }`.
 *
 * Helia's routing is given one router that finds nothing (without one it
 * waits for routers that never answer before falling back); Bitswap asks the
 * connected peer directly.
 */
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { createHeliaLight } from 'helia'
import type { Router } from 'helia'
import { withLibp2pLight } from '@helia/libp2p'
import { withBitswap } from '@helia/bitswap'
import { unixfs } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { MemoryDatastore } from 'datastore-core'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'

const [role, dir, a, b] = process.argv.slice(2)

const findsNothing: Router = {
  name: 'finds-nothing',
  async provide () {},
  async * findProviders () {},
  async put () {},
  async get () { throw Object.assign(new Error('not found'), { name: 'NotFoundError' }) },
  async findPeer () { throw Object.assign(new Error('not found'), { name: 'NotFoundError' }) },
  async * getClosestPeers () {}
}

async function peakRssMb (): Promise<number> {
  return Number(/VmHWM:\s+(\d+)/.exec(await readFile('/proc/self/status', 'utf8'))?.[1]) / 1024
}

const blockstore = new FsBlockstore(dir)
await blockstore.open()
const helia = withBitswap(withLibp2pLight(createHeliaLight({ blockstore, datastore: new MemoryDatastore(), routers: [findsNothing] }), {
  addresses: { listen: role === 'send' ? ['/ip4/127.0.0.1/tcp/0'] : [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() }
}))
await helia.start()

if (role === 'send') {
  const cid = await unixfs(helia).addByteStream(createReadStream(a, { highWaterMark: 1024 * 1024 }))
  process.stdout.write(JSON.stringify({ cid: cid.toString(), addr: helia.libp2p.getMultiaddrs()[0].toString() }) + '\n')
  for await (const _ of createInterface({ input: process.stdin })) break
  process.stdout.write(JSON.stringify({ peakRssMb: await peakRssMb() }) + '\n')
} else {
  await helia.libp2p.dial(multiaddr(a))
  const cid = CID.parse(b)
  const t0 = performance.now()
  // reading the file through fetches every block over Bitswap and stores it (the exporter
  // asks for siblings ahead, so this is Helia's fast path); pinning then finds them all local
  let bytes = 0
  for await (const chunk of unixfs(helia).cat(cid)) bytes += chunk.byteLength
  for await (const _ of helia.pins.add(cid)) { /* already held */ }
  const seconds = (performance.now() - t0) / 1000
  process.stdout.write(JSON.stringify({ seconds, bytes, peakRssMb: await peakRssMb() }) + '\n')
}
await helia.stop()
await blockstore.close()
process.exit(0)
