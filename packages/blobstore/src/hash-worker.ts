/**
 * A hashing thread of the `HashPool`: it reads runs of file leaves and
 * returns their BLAKE3 digests (see `readDigests`). Requests name a file
 * descriptor that the main thread opened; descriptors are shared by every
 * thread of the process.
 */
import { createRequire } from 'node:module'
import { parentPort } from 'node:worker_threads'
import { readDigests } from './leaf-reader.js'
import type { HashReply, HashRequest } from './hash-pool.js'
import type { LeafHasher } from './leaf-reader.js'

/**
 * The native binding that the `blake3` package wraps, loaded directly: the
 * package's module graph costs a new thread about 30 ms more to load. If the
 * binding is not where it is expected, the package itself.
 */
async function loadHasher (): Promise<() => LeafHasher> {
  try {
    const require = createRequire(import.meta.url)
    const native = createRequire(require.resolve('blake3'))('@c4312/blake3-native/build/Release/blake3.node')
    if (typeof native?.createHash === 'function') return () => native.createHash()
  } catch { /* the package's way below */ }
  const { createHash } = await import('blake3')
  return createHash
}

const createHasher = await loadHasher()

parentPort?.on('message', (req: HashRequest) => {
  let reply: HashReply
  try {
    const { digests, sizes } = readDigests(createHasher, req.fd, req.position, req.leafSize, req.count)
    reply = { id: req.id, ok: true, digests, sizes }
  } catch (err: any) {
    reply = { id: req.id, ok: false, code: err?.code, message: String(err?.message ?? err) }
  }
  parentPort?.postMessage(reply, reply.ok ? [reply.digests.buffer as ArrayBuffer] : [])
})

// loaded: the pool may send requests
parentPort?.postMessage({ ready: true })
