import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
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
    close: async () => {
      await stream.close({ signal: AbortSignal.timeout(opts.timeoutMs) }).catch(() => stream.abort(new Error('close timed out')))
    },
    abort: (reason: string) => { stream.abort(new ProtocolError(reason)) }
  }
}

export function isRecord (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}
