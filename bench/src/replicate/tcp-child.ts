/**
 * Child process: the plain TCP baseline, a Node `net` socket on loopback.
 *
 * - `receive <out|-> `: listens, prints `{ port }`; for one connection writes
 *   what arrives into `out` and fsyncs it (`-` discards it: socket only), then
 *   prints `{ seconds, bytes }`, timed from the connection to the last byte
 *   on disk.
 * - `send <port> <file>`: connects and streams the file (1 MiB reads).
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { createServer, connect } from 'node:net'
import { pipeline } from 'node:stream/promises'

const [role, a, b] = process.argv.slice(2)

if (role === 'receive') {
  const server = createServer(socket => {
    const t0 = performance.now()
    let bytes = 0
    socket.on('data', d => { bytes += d.length })
    const done = async (): Promise<void> => {
      if (a === '-') {
        socket.resume()
        await new Promise(resolve => socket.on('end', resolve))
      } else {
        await pipeline(socket, createWriteStream(a, { highWaterMark: 1024 * 1024 }))
        const fh = await open(a, 'r+')
        await fh.sync()
        await fh.close()
      }
      process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, bytes }) + '\n')
      server.close()
    }
    void done()
  })
  server.listen(0, '127.0.0.1', () => { process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n') })
} else {
  const socket = connect(Number(a), '127.0.0.1')
  await new Promise(resolve => socket.on('connect', resolve))
  await pipeline(createReadStream(b, { highWaterMark: 1024 * 1024 }), socket)
}
