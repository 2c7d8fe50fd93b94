import { AbortError, InvalidArgumentError } from './errors.js'

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array

export interface ChunkOptions {
  signal?: AbortSignal
  /**
   * The consumer is done with each chunk before it asks for the next (it
   * copies what it keeps), so one buffer can be reused for the chunks that
   * must be assembled from several pieces.
   */
  transient?: boolean
}

/**
 * Re-cuts a byte stream into chunks of exactly `size` bytes (the last may be
 * shorter; an empty stream gives one empty chunk, as the UnixFS importer's
 * fixed-size chunker does). Holds at most one chunk in memory.
 *
 * A chunk that lies whole inside one piece of the source is yielded as a view
 * of that piece, without a copy (a file stream read with a 1 MiB
 * highWaterMark never copies); only chunks that span pieces are assembled.
 * Like the importer's chunker, this assumes the source does not modify a
 * piece after yielding it (Node and web streams never do).
 */
export async function * fixedSizeChunks (source: ByteSource, size: number, options: ChunkOptions = {}): AsyncGenerator<Uint8Array> {
  if (!Number.isSafeInteger(size) || size <= 0) throw new InvalidArgumentError('chunk size must be a positive integer')
  const { signal, transient = false } = options
  const input: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = source instanceof Uint8Array ? [source] : source
  let buf: Uint8Array | undefined
  let used = 0
  let emitted = false
  for await (const piece of input) {
    if (signal?.aborted === true) throw new AbortError()
    if (!(piece instanceof Uint8Array)) throw new InvalidArgumentError('source must yield Uint8Array chunks')
    let pos = 0
    // whole chunks straight from the piece
    while (used === 0 && piece.byteLength - pos >= size) {
      // a piece that is exactly one chunk goes on as itself, so a digest its
      // source noted for it (see leaf-hash.ts) still finds it
      yield pos === 0 && piece.byteLength === size && Object.getPrototypeOf(piece) === Uint8Array.prototype ? piece : view(piece, pos, size)
      emitted = true
      pos += size
    }
    while (pos < piece.byteLength) {
      // (allocUnsafe: every byte yielded is written first)
      buf ??= new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size)
      const n = Math.min(size - used, piece.byteLength - pos)
      buf.set(piece.subarray(pos, pos + n), used)
      used += n
      pos += n
      if (used === size) {
        yield buf
        emitted = true
        if (!transient) buf = undefined
        used = 0
        while (piece.byteLength - pos >= size) {
          yield view(piece, pos, size)
          pos += size
        }
      }
    }
  }
  if (signal?.aborted === true) throw new AbortError()
  if (used > 0 || !emitted) yield (buf ?? new Uint8Array(0)).slice(0, used)
}

/** A plain Uint8Array over part of `piece` (a Buffer's subarray would be a Buffer) */
function view (piece: Uint8Array, offset: number, length: number): Uint8Array {
  return new Uint8Array(piece.buffer, piece.byteOffset + offset, length)
}
