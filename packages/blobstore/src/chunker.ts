import { AbortError, InvalidArgumentError } from './errors.js'

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array

/**
 * Re-cuts a byte stream into chunks of exactly `size` bytes (the last may be
 * shorter; an empty stream gives one empty chunk, as the UnixFS importer's
 * fixed-size chunker does). Holds at most one chunk in memory.
 */
export async function * fixedSizeChunks (source: ByteSource, size: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  if (!Number.isSafeInteger(size) || size <= 0) throw new InvalidArgumentError('chunk size must be a positive integer')
  const input: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = source instanceof Uint8Array ? [source] : source
  let buf = new Uint8Array(size)
  let used = 0
  let emitted = false
  for await (const piece of input) {
    if (signal?.aborted === true) throw new AbortError()
    if (!(piece instanceof Uint8Array)) throw new InvalidArgumentError('source must yield Uint8Array chunks')
    let pos = 0
    while (pos < piece.byteLength) {
      const n = Math.min(size - used, piece.byteLength - pos)
      buf.set(piece.subarray(pos, pos + n), used)
      used += n
      pos += n
      if (used === size) {
        yield buf
        emitted = true
        buf = new Uint8Array(size)
        used = 0
      }
    }
  }
  if (signal?.aborted === true) throw new AbortError()
  if (used > 0 || !emitted) yield buf.slice(0, used)
}
