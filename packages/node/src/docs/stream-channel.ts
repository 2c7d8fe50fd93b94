import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { MessageChannel } from '@hearth/sync'
import { Uint8ArrayList } from 'uint8arraylist'
import type { FrameGuard } from '../p2p/frame-guard.js'

export interface StreamChannelInit {
  /** largest frame accepted from the peer; a larger one closes the stream */
  maxFrameBytes: number
  /** an empty frame is sent this often so idle sessions outlive the stream inactivity timeout */
  keepAliveMs: number
  /** called once with the reason when the stream ends badly (oversized frame, reset) */
  onError?: (reason: string) => void
  /** reserves each arriving frame against the daemon's inbound budget, and cuts slow ones */
  guard?: FrameGuard
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

/** frames waiting to be handled before the stream is paused, and before it resumes */
const HIGH_WATER_BYTES = 4 * 1024 * 1024
const LOW_WATER_BYTES = 1024 * 1024
/** how long one turn of the event loop may spend handling frames */
const SLICE_MS = 10

/**
 * A sync-engine {@link MessageChannel} over one libp2p stream: each message is
 * one varint-length-prefixed frame. `send` resolves at once while the
 * stream's buffer has room, and on its `drain` event when it does not, which
 * is the engine's backpressure. Incoming frames are handled a slice of time
 * per event-loop turn, so a peer sending thousands of documents never starves
 * pings, HTTP or other peers; while too many wait, the stream is paused and
 * the sender's window closes. Zero-length frames are keep-alives.
 */
export function streamChannel (stream: Stream, init: StreamChannelInit): StreamChannel {
  const decoder = new LengthPrefixedDecoder({ maxDataLength: init.maxFrameBytes, maxBufferSize: 2 * init.maxFrameBytes + 1024 * 1024 })
  let handler: ((m: Uint8Array) => void) | undefined
  const queue: Uint8Array[] = []
  let queued = 0
  let paused = false
  let scheduled = false
  let ending = false
  const closeHandlers: Array<() => void> = []
  let closed = false
  // while paused the window already granted may still arrive: room for it (the host's yamux grants at most 4 MiB)
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, 8 * 1024 * 1024)

  const finish = (): void => {
    if (closed) return
    closed = true
    clearInterval(keepAlive)
    queue.length = 0
    for (const h of closeHandlers.splice(0)) h()
  }
  const fail = (reason: string): void => {
    init.onError?.(reason)
    stream.abort(new Error(reason))
    finish()
  }
  const drain = (): void => {
    scheduled = false
    if (closed || handler == null) return
    const until = performance.now() + SLICE_MS
    while (queue.length > 0 && !closed) {
      const bytes = queue.shift() as Uint8Array
      queued -= bytes.byteLength
      watch?.taken(bytes.byteLength)
      handler(bytes)
      if (performance.now() > until) break
    }
    if (closed) return
    if (paused && queued < LOW_WATER_BYTES) {
      paused = false
      stream.resume()
    }
    if (queue.length > 0) schedule()
    else if (ending) finish()
  }
  const schedule = (): void => {
    if (scheduled || closed) return
    scheduled = true
    setImmediate(drain)
  }

  const watch = init.guard?.watch(stream, init.maxFrameBytes)
  stream.addEventListener('message', evt => {
    if (closed) return
    try {
      for (const frame of decoder.decode(evt.data)) {
        if (frame.byteLength === 0) continue
        const bytes = frame.subarray()
        queue.push(bytes)
        queued += bytes.byteLength
      }
    } catch (err: any) {
      fail(`bad frame: ${String(err?.message ?? err)}`)
      return
    }
    if (!paused && queued > HIGH_WATER_BYTES) {
      paused = true
      stream.pause()
    }
    schedule()
  })
  stream.addEventListener('close', () => { finish() })
  stream.addEventListener('remoteCloseWrite', () => {
    // the peer is done with this session: handle what it sent, then end ours too
    void stream.close().catch(() => { stream.abort(new Error('close failed')) })
    ending = true
    if (queue.length === 0) finish()
    else schedule()
  })

  const write = (bytes: Uint8Array): boolean => stream.send(new Uint8ArrayList(varint(bytes.byteLength), bytes))
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
      schedule()
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
