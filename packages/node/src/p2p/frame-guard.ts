import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { InboundBudget, PeerClass } from './inbound-budget.js'

/** A frame's first byte to its last may take this long, plus its length at MIN_RATE (less than the protocols' 10 s read timeouts, so a drip is struck before a read gives up on it) */
export const FRAME_GRACE_MS = 5000
/** bytes per second a sender must keep up within one frame (a slow home uplink sends 4× this) */
export const MIN_RATE = 128 * 1024

export interface FrameGuard {
  /**
   * Watches the varint-length-prefixed frames arriving on `stream`: each one
   * is reserved against the daemon's inbound budget before its bytes are
   * kept, must not exceed `maxFrameBytes`, and must arrive in time. A whole
   * frame stays reserved until the reader says it took it. With
   * `pauseUnread`, the stream is paused while a whole frame waits unread
   * (the sender then waits on yamux's window instead of filling memory).
   * Call it right before the reader adds its own `message` listener.
   */
  watch: (stream: Stream, maxFrameBytes: number, opts?: { pauseUnread?: boolean }) => FrameWatch
}

export interface FrameWatch {
  /** The reader took a whole frame of `length` bytes: its reservation goes back */
  taken: (length: number) => void
}

export interface FrameGuardInit {
  peer: string
  cls: PeerClass
  budget: InboundBudget
  /** a breach the sender is to blame for (it gets a strike) */
  offence: (reason: string, weight: number) => void
  /** a frame refused for lack of room in the budget */
  refused: (reason: string) => void
  /** a frame's deadline passed */
  timedOut: () => void
}

/** How long a frame of `length` bytes may take to arrive */
export function frameDeadlineMs (length: number): number {
  return FRAME_GRACE_MS + Math.ceil(length / MIN_RATE * 1000)
}

/**
 * Builds a {@link FrameGuard} for one peer. The guard only reads lengths:
 * it keeps no bytes, so what a frame costs is counted from before the reader
 * buffers it until the reader is done with it, and a frame whose reservation
 * fails aborts the stream before its bytes are kept.
 */
export function frameGuard (init: FrameGuardInit): FrameGuard {
  return {
    watch (stream, maxFrameBytes, opts = {}) {
      let need = 0
      /** whole frames not read yet, oldest first: their lengths, still reserved */
      const unread: number[] = []
      let pausedByUs = false
      let reserved = 0
      let length = 0
      let shift = 0
      let timer: ReturnType<typeof setTimeout> | undefined
      let done = false

      /** the frame in progress is whole: it stays reserved until read */
      const whole = (): void => {
        if (timer != null) clearTimeout(timer)
        timer = undefined
        unread.push(reserved)
        reserved = 0
        if (opts.pauseUnread === true && !pausedByUs && stream.readStatus === 'readable') {
          pausedByUs = true
          stream.pause()
        }
      }
      const end = (): void => {
        if (done) return
        done = true
        if (timer != null) clearTimeout(timer)
        timer = undefined
        init.budget.release(init.peer, init.cls, reserved + unread.reduce((a, b) => a + b, 0))
        reserved = 0
        unread.length = 0
      }
      const abort = (reason: string): void => {
        end()
        stream.abort(new Error(reason))
      }
      const arm = (ms: number): void => {
        timer = setTimeout(() => {
          // a reader that paused the stream holds the frame back, not the sender
          if (stream.readStatus === 'paused') { arm(FRAME_GRACE_MS); return }
          init.timedOut()
          init.offence('held a partial frame past its deadline', 2)
          abort('partial frame timed out')
        }, ms)
        timer.unref?.()
      }
      const start = (n: number): boolean => {
        if (n > maxFrameBytes) {
          init.offence(`announced a frame of ${n} bytes (at most ${maxFrameBytes})`, 1)
          abort('frame too large')
          return false
        }
        // a frame that came in one delivery with a whole one still unread is
        // in memory already (the stream is paused now, so no more follows):
        // it is counted, not refused
        if (!init.budget.reserve(init.peer, init.cls, n, unread.length > 0)) {
          init.refused('inbound memory budget has no room')
          abort('inbound memory budget exhausted')
          return false
        }
        reserved = n
        need = n
        arm(frameDeadlineMs(n))
        return true
      }

      stream.addEventListener('message', evt => {
        if (done) return
        const data = evt.data as Uint8Array | Uint8ArrayList
        const chunks: Iterable<Uint8Array> = data instanceof Uint8Array ? [data] : data
        for (const chunk of chunks) {
          let pos = 0
          while (pos < chunk.length) {
            if (need > 0) {
              const take = Math.min(need, chunk.length - pos)
              need -= take
              pos += take
              if (need === 0) whole()
              continue
            }
            const byte = chunk[pos++]
            length += (byte & 0x7f) * 2 ** shift
            shift += 7
            if ((byte & 0x80) !== 0) {
              if (shift > 35) { init.offence('bad length prefix', 1); abort('bad length prefix'); return }
              continue
            }
            const n = length
            length = 0
            shift = 0
            // zero-length frames are keep-alives
            if (n > 0 && !start(n)) return
          }
        }
      })
      stream.addEventListener('close', end)
      return {
        taken (length) {
          if (length === 0 || done) return
          const n = unread.shift()
          if (n == null) return
          init.budget.release(init.peer, init.cls, n)
          if (pausedByUs && unread.length === 0) {
            pausedByUs = false
            if (stream.readStatus === 'paused') stream.resume()
          }
        }
      }
    }
  }
}
