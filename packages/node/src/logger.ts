import { write, writeSync } from 'node:fs'
import { pino } from 'pino'
import pretty from 'pino-pretty'
import type { ComponentLogger, Logger } from '@hearth/trust'
import type { LogLevel } from './config/spec.js'

export interface HearthLogger extends ComponentLogger {
  root: pino.Logger
  /** log lines dropped because their destination could not take them (full disk, a reader that stopped) */
  dropped: () => number
}

export interface LoggerInit {
  level: LogLevel
  /** pretty, colourised lines instead of JSON; defaults to whether stdout is a terminal */
  pretty?: boolean
  /** where JSON lines go; defaults to stdout */
  destination?: NodeJS.WritableStream
}

/**
 * One pino logger for the whole daemon; every part logs through a child that
 * carries its `component` name, so all lines land in one structured stream.
 */
export function createLogger (init: LoggerInit): HearthLogger {
  const usePretty = init.pretty ?? process.stdout.isTTY === true
  const out = usePretty || init.destination != null ? undefined : new DroppingWriter(1)
  const stream = usePretty
    ? pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,component', messageFormat: '{if component}{component}: {end}{msg}', singleLine: true, sync: true })
    : init.destination ?? out!
  const root = pino({ level: init.level, base: { pid: process.pid } }, stream)
  return {
    root,
    forComponent: (name: string): Logger => root.child({ component: name }),
    dropped: () => out?.dropped ?? 0
  }
}

/** lines waiting for the file descriptor beyond this are dropped */
const MAX_QUEUED_BYTES = 1024 * 1024

/**
 * A log destination that never blocks the daemon: lines are written to `fd`
 * one batch at a time off the main thread; while a write is under way they
 * queue, up to 1 MiB, and beyond that (a reader that stopped reading) or
 * when a write fails (ENOSPC on a full disk, EPIPE) they are dropped and
 * counted. pino's own destinations retry a failed write in a loop, which on
 * a full disk held the process (and ignored SIGTERM).
 */
export class DroppingWriter {
  dropped = 0
  private queue: string[] = []
  private queuedBytes = 0
  private writing = false

  constructor (private readonly fd: number) {}

  write (line: string): boolean {
    if (this.queuedBytes + line.length > MAX_QUEUED_BYTES) {
      this.dropped++
      return true
    }
    this.queue.push(line)
    this.queuedBytes += line.length
    if (!this.writing) this.drain()
    return true
  }

  private drain (): void {
    if (this.queue.length === 0) { this.writing = false; return }
    this.writing = true
    const lines = this.queue
    this.queue = []
    this.queuedBytes = 0
    const buf = Buffer.from(lines.join(''))
    const onWritten = (offset: number) => (err: NodeJS.ErrnoException | null, n: number): void => {
      if (err != null) {
        if (err.code === 'EAGAIN') { setTimeout(() => { write(this.fd, buf, offset, buf.length - offset, null, onWritten(offset)) }, 20).unref(); return }
        this.dropped += lines.length
      } else if (offset + n < buf.length) {
        write(this.fd, buf, offset + n, buf.length - offset - n, null, onWritten(offset + n))
        return
      }
      this.drain()
    }
    write(this.fd, buf, 0, buf.length, null, onWritten(0))
  }

  /** At exit: one synchronous attempt at what is queued (a write in flight finishes on its own). */
  flushSync (): void {
    if (this.queue.length === 0) return
    const lines = this.queue
    this.queue = []
    this.queuedBytes = 0
    try { writeSync(this.fd, lines.join('')) } catch { this.dropped += lines.length }
  }

  flush (cb?: (err?: Error) => void): void {
    this.flushSync()
    cb?.()
  }
}

/** A logger that drops everything, for library defaults and tests. */
export const silentLogger: ComponentLogger = {
  forComponent: () => {
    const noop = (): void => {}
    return { trace: noop, debug: noop, info: noop, warn: noop, error: noop }
  }
}
