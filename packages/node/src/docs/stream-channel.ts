import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { MessageChannel } from '@hearth/sync'
import { Uint8ArrayList } from 'uint8arraylist'

export interface StreamChannelInit {
  /** largest frame accepted from the peer; a larger one closes the stream */
  maxFrameBytes: number
  /** an empty frame is sent this often so idle sessions outlive the stream inactivity timeout */
  keepAliveMs: number
  /** called once with the reason when the stream ends badly (oversized frame, reset) */
  onError?: (reason: string) => void
}

/** unsigned LEB128, as it-length-prefixed writes it */
function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}

/**
 * A sync-engine {@link MessageChannel} over one libp2p stream: each message is
 * one varint-length-prefixed frame. `send` resolves at once while the
 * stream's buffer has room, and on its `drain` event when it does not, which
 * is the engine's backpressure. Zero-length frames are keep-alives and never
 * reach the engine.
 */
export type StreamChannel = MessageChannel & { readonly closed: boolean, onClose: (handler: () => void) => void }

export function streamChannel (stream: Stream, init: StreamChannelInit): StreamChannel {
  const decoder = new LengthPrefixedDecoder({ maxDataLength: init.maxFrameBytes, maxBufferSize: 2 * init.maxFrameBytes + 1024 * 1024 })
  let handler: ((m: Uint8Array) => void) | undefined
  const early: Uint8Array[] = []
  const closeHandlers: Array<() => void> = []
  let closed = false

  const finish = (): void => {
    if (closed) return
    closed = true
    clearInterval(keepAlive)
    for (const h of closeHandlers.splice(0)) h()
  }
  const fail = (reason: string): void => {
    init.onError?.(reason)
    stream.abort(new Error(reason))
    finish()
  }

  stream.addEventListener('message', evt => {
    if (closed) return
    try {
      for (const frame of decoder.decode(evt.data)) {
        if (frame.byteLength === 0) continue
        const bytes = frame.subarray()
        if (handler != null) handler(bytes)
        else early.push(bytes)
        if (closed) return
      }
    } catch (err: any) {
      fail(`bad frame: ${String(err?.message ?? err)}`)
    }
  })
  stream.addEventListener('close', () => { finish() })
  stream.addEventListener('remoteCloseWrite', () => {
    // the peer is done with this session: end ours too
    void stream.close().catch(() => { stream.abort(new Error('close failed')) })
    finish()
  })

  const write = (bytes: Uint8Array): boolean => {
    const list = new Uint8ArrayList(varint(bytes.byteLength), bytes)
    return stream.send(list)
  }
  const keepAlive = setInterval(() => {
    if (closed || stream.writableNeedsDrain) return
    try { write(new Uint8Array(0)) } catch { finish() }
  }, init.keepAliveMs)
  keepAlive.unref?.()

  return {
    get closed () { return closed },
    send (message: Uint8Array): void | Promise<void> {
      if (closed || stream.writeStatus !== 'writable') throw new Error('the sync stream is closed')
      if (write(message)) return
      return stream.onDrain({ signal: AbortSignal.timeout(60_000) })
    },
    onMessage (h) {
      handler = h
      for (const m of early.splice(0)) h(m)
    },
    onClose (h) {
      if (closed) h()
      else closeHandlers.push(h)
    },
    close () {
      if (closed) return
      finish()
      void stream.close({ signal: AbortSignal.timeout(5000) }).catch(() => { stream.abort(new Error('close timed out')) })
    }
  }
}
