import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { Stream } from '@libp2p/interface'
import type { FrameGuard } from './frame-guard.js'

/**
 * Length-prefixed dag-cbor messages over a libp2p stream, for Hearth's own
 * protocols. Every frame is capped (`maxBytes`) and every read and write is
 * bounded in time, so a silent or flooding peer costs at most that much.
 */
export class ProtocolError extends Error {
  static readonly code = 'ERR_PROTOCOL'
  readonly code = ProtocolError.code
  override readonly name: string = 'ProtocolError'
}

export interface FramedStream {
  read: <T = unknown>() => Promise<T>
  write: (message: unknown) => Promise<void>
  /** Writes one frame already encoded (see `encodeWithBytes`) */
  writeEncoded: (frame: Uint8ArrayList) => Promise<void>
  close: () => Promise<void>
  abort: (reason: string) => void
}

/**
 * `maxBytes` caps one frame; `maxBufferBytes` caps what may arrive unread
 * (default: libp2p's 4 MiB). Received data is not backpressured, so a reader
 * that asks for several large frames at once must allow for all of them.
 * `guard` (the peer policy's) reserves each arriving frame against the
 * daemon's inbound budget and cuts frames that arrive too slowly.
 */
export function framed (stream: Stream, opts: { maxBytes: number, timeoutMs: number, maxBufferBytes?: number, guard?: FrameGuard }): FramedStream {
  const watch = opts.guard?.watch(stream, opts.maxBytes, { pauseUnread: true })
  const lp = lpStream(stream, { maxDataLength: opts.maxBytes, ...(opts.maxBufferBytes != null ? { maxBufferSize: opts.maxBufferBytes } : {}) })
  return {
    read: async <T>() => {
      let bytes
      try {
        bytes = await lp.read({ signal: AbortSignal.timeout(opts.timeoutMs) })
        watch?.taken(bytes.byteLength)
      } catch (err: any) {
        if (err?.name === 'InvalidDataLengthError' || err?.name === 'InvalidDataLengthLengthError') throw new ProtocolError(`frame larger than ${opts.maxBytes} bytes`)
        throw err
      }
      const frame = bytes.subarray()
      const flat = decodeFlatMap(frame)
      if (flat !== undefined) return flat as T
      try {
        return dagCbor.decode<T>(frame)
      } catch {
        throw new ProtocolError('frame is not dag-cbor')
      }
    },
    write: async (message: unknown) => {
      await lp.write(dagCbor.encode(message), { signal: AbortSignal.timeout(opts.timeoutMs) })
    },
    writeEncoded: async (frame: Uint8ArrayList) => {
      await lp.write(frame, { signal: AbortSignal.timeout(opts.timeoutMs) })
    },
    close: async () => {
      await stream.close({ signal: AbortSignal.timeout(opts.timeoutMs) }).catch(() => stream.abort(new Error('close timed out')))
    },
    abort: (reason: string) => { stream.abort(new ProtocolError(reason)) }
  }
}

/**
 * The dag-cbor encoding of `{ ...fields, bytes }`, in two parts, so a 1 MiB
 * block is sent from where it lies instead of being copied into a fresh
 * buffer for every frame. Canonical dag-cbor orders a map's keys by length,
 * then bytewise, so `bytes` is the last key when every other key is shorter:
 * the encoding is the fields' own, ending with the byte string's header,
 * then the bytes.
 */
export function encodeWithBytes (fields: Record<string, unknown>, bytes: Uint8Array): Uint8ArrayList {
  if (Object.keys(fields).some(k => k.length >= 'bytes'.length)) throw new TypeError('encodeWithBytes takes keys shorter than "bytes"')
  const head = dagCbor.encode({ ...fields, bytes: new Uint8Array(0) })
  // the empty byte string is the last byte (major type 2, length 0); the real header takes its place
  return new Uint8ArrayList(head.subarray(0, head.byteLength - 1), byteStringHeader(bytes.byteLength), bytes)
}

/** The CBOR header of a byte string of `n` bytes (major type 2, shortest length form) */
function byteStringHeader (n: number): Uint8Array {
  if (n < 24) return Uint8Array.of(0x40 | n)
  if (n < 0x100) return Uint8Array.of(0x58, n)
  if (n < 0x10000) return Uint8Array.of(0x59, n >> 8, n & 0xff)
  return Uint8Array.of(0x5a, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A frame that is a map of text keys to text or byte-string values (a
 * block: `{ cid, type, bytes }`) in strict dag-cbor form, decoded with each
 * byte string as a view of the frame instead of a copy: `@ipld/dag-cbor`
 * copies every byte string it decodes, a fresh 1 MiB per block received.
 * Anything else, and anything this reading is not sure of (a length not in
 * its shortest form, keys out of canonical order, bad UTF-8, a byte left
 * over), gives undefined, and the frame goes to the full decoder, which
 * decodes it or refuses it as it always did.
 */
export function decodeFlatMap (frame: Uint8Array): Record<string, string | Uint8Array> | undefined {
  let pos = 0
  /** the length of the item at `pos` if it has major type `major`, in shortest form; moves `pos` past the header */
  const header = (major: number): number | undefined => {
    if (pos >= frame.length || frame[pos] >> 5 !== major) return undefined
    const info = frame[pos] & 0x1f
    if (info < 24) { pos += 1; return info }
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : 0
    if (size === 0 || pos + 1 + size > frame.length) return undefined
    let n = 0
    for (let i = 1; i <= size; i++) n = n * 256 + frame[pos + i]
    if (n < (size === 1 ? 24 : 2 ** (4 * size))) return undefined
    pos += 1 + size
    return n
  }
  const take = (n: number): Uint8Array | undefined => {
    if (pos + n > frame.length) return undefined
    pos += n
    return frame.subarray(pos - n, pos)
  }
  const count = header(5)
  if (count === undefined) return undefined
  const out: Record<string, string | Uint8Array> = {}
  let previous: Uint8Array | undefined
  try {
    for (let i = 0; i < count; i++) {
      const keyLength = header(3)
      const key = keyLength === undefined ? undefined : take(keyLength)
      if (key === undefined || (previous !== undefined && !keyAfter(previous, key))) return undefined
      previous = key
      const major = pos < frame.length ? frame[pos] >> 5 : -1
      if (major !== 2 && major !== 3) return undefined
      const length = header(major)
      const value = length === undefined ? undefined : take(length)
      if (value === undefined) return undefined
      const name = utf8.decode(key)
      if (name === '__proto__') return undefined
      out[name] = major === 2 ? value : utf8.decode(value)
    }
  } catch {
    return undefined // not UTF-8
  }
  return pos === frame.length ? out : undefined
}

/** dag-cbor's map key order: shorter first, then bytewise */
function keyAfter (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return b.length > a.length
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return b[i] > a[i]
  return false
}

export function isRecord (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}
