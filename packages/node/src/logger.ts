import { pino } from 'pino'
import pretty from 'pino-pretty'
import type { ComponentLogger, Logger } from '@hearth/trust'
import type { LogLevel } from './config/spec.js'

export interface HearthLogger extends ComponentLogger {
  root: pino.Logger
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
  const stream = usePretty
    ? pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,component', messageFormat: '{if component}{component}: {end}{msg}', singleLine: true, sync: true })
    : init.destination ?? pino.destination({ dest: 1, sync: false })
  const root = pino({ level: init.level, base: { pid: process.pid } }, stream)
  return {
    root,
    forComponent: (name: string): Logger => root.child({ component: name })
  }
}

/** A logger that drops everything, for library defaults and tests. */
export const silentLogger: ComponentLogger = {
  forComponent: () => {
    const noop = (): void => {}
    return { trace: noop, debug: noop, info: noop, warn: noop, error: noop }
  }
}
