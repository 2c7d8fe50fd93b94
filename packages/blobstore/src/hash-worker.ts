/**
 * A hashing thread of the `HashPool`: it reads runs of file leaves and
 * returns their BLAKE3 digests (see `readDigests`). Requests name a file
 * descriptor that the main thread opened; descriptors are shared by every
 * thread of the process.
 */
import { parentPort } from 'node:worker_threads'
import { readDigests } from './leaf-reader.js'
import type { HashReply, HashRequest } from './hash-pool.js'

parentPort?.on('message', (req: HashRequest) => {
  let reply: HashReply
  try {
    const { digests, sizes } = readDigests(req.fd, req.position, req.leafSize, req.count)
    reply = { id: req.id, ok: true, digests, sizes }
  } catch (err: any) {
    reply = { id: req.id, ok: false, code: err?.code, message: String(err?.message ?? err) }
  }
  parentPort?.postMessage(reply, reply.ok ? [reply.digests.buffer as ArrayBuffer] : [])
})

// loaded: the pool may send requests
parentPort?.postMessage({ ready: true })
