import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { Stream } from '@libp2p/interface'

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
 */
export function framed (stream: Stream, opts: { maxBytes: number, timeoutMs: number, maxBufferBytes?: number }): FramedStream {
  const lp = lpStream(stream, { maxDataLength: opts.maxBytes, ...(opts.maxBufferBytes != null ? { maxBufferSize: opts.maxBufferBytes } : {}) })
  return {
    read: async <T>() => {
      let bytes
      try {
        bytes = await lp.read({ signal: AbortSignal.timeout(opts.timeoutMs) })
      } catch (err: any) {
        if (err?.name === 'InvalidDataLengthError' || err?.name === 'InvalidDataLengthLengthError') throw new ProtocolError(`frame larger than ${opts.maxBytes} bytes`)
        throw err
      }
      try {
        return dagCbor.decode<T>(bytes.subarray())
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

export function isRecord (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}
