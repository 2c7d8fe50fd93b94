import { open } from 'node:fs/promises'
import { CHUNK_SIZE } from './constants.js'
import { AbortError, InvalidArgumentError } from './errors.js'
import { leafHashAddon, notePrehashed } from './leaf-hash.js'

export interface FileSourceOptions {
  /** Bytes per read (default 1 MiB, one leaf: the chunker then cuts no leaf from two reads) */
  readSize?: number
  /** First byte to read (default 0) */
  start?: number
  signal?: AbortSignal
  /**
   * Hash each chunk with BLAKE3 as it is read, on libuv's thread pool
   * (default: when `@hearth/leaf-hash` loads). `add()` and `buildDag()` then
   * take the chunk's CID from that digest instead of hashing it themselves.
   */
  hashWhileReading?: boolean
}

/** What one read gave: its length, and the digest of those bytes when the addon hashed them */
interface ReadResult { n: number, digest?: Uint8Array }

/**
 * A file as a byte source for `add()` or `buildDag()`, read with large reads
 * into two buffers that are reused: while the consumer works on one chunk,
 * the next is read into the other. A file stream allocates a fresh buffer per
 * read instead, and the page faults of that new memory cost about as much as
 * hashing it. With the leaf-hash addon each read also hashes what it read,
 * 64 KiB at a time while the bytes are in cache, off the JavaScript thread,
 * so an add's main thread only stores.
 *
 * A chunk is valid until the consumer asks for the one after the next: fine
 * for `add()` (it stores each leaf before it asks for more) and for a
 * `buildDag()` sink that copies or only looks, not for a consumer that keeps
 * chunks.
 */
export async function * fileSource (path: string, options: FileSourceOptions = {}): AsyncGenerator<Uint8Array> {
  const readSize = options.readSize ?? CHUNK_SIZE
  if (!Number.isSafeInteger(readSize) || readSize <= 0) throw new InvalidArgumentError('readSize must be a positive integer')
  const { signal } = options
  const addon = options.hashWhileReading === false ? null : leafHashAddon()
  if (options.hashWhileReading === true && addon == null) throw new InvalidArgumentError('hashWhileReading needs the @hearth/leaf-hash addon, which did not load')
  const file = await open(path, 'r')
  let next: Promise<ReadResult> | undefined
  try {
    // unzeroed: only bytes a read wrote are yielded
    const buffers = [Buffer.allocUnsafeSlow(readSize), Buffer.allocUnsafeSlow(readSize)]
    let position = options.start ?? 0
    let turn = 0
    const readInto = async (buf: Buffer): Promise<ReadResult> => {
      if (addon != null) {
        // one read of the whole buffer (it loops in C), hashed as it arrives
        const { bytesRead, digest } = await addon.readHashed(file.fd, buf, position)
        position += bytesRead
        return { n: bytesRead, digest }
      }
      let n = 0
      // a read may return less than asked before the end of the file
      while (n < buf.byteLength) {
        const { bytesRead } = await file.read(buf, n, buf.byteLength - n, position + n)
        if (bytesRead === 0) break
        n += bytesRead
      }
      position += n
      return { n }
    }
    next = readInto(buffers[0])
    for (;;) {
      const read: ReadResult = await next
      const { n } = read
      if (signal?.aborted === true) throw new AbortError()
      if (n === 0) return
      const buf = buffers[turn]
      turn ^= 1
      const chunk = new Uint8Array(buf.buffer, buf.byteOffset, n)
      if (read.digest !== undefined) notePrehashed(chunk, read.digest)
      // read ahead into the other buffer, which the consumer is done with
      next = n < buf.byteLength ? Promise.resolve({ n: 0 }) : readInto(buffers[turn])
      yield chunk
    }
  } finally {
    // a consumer that stops early leaves a read in flight
    await next?.catch(() => {})
    await file.close()
  }
}
