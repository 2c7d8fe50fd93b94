/** Structural, pino-compatible logger: the daemon passes pino child loggers */
export interface Logger {
  trace: (obj: object | string, msg?: string) => void
  debug: (obj: object | string, msg?: string) => void
  info: (obj: object | string, msg?: string) => void
  warn: (obj: object | string, msg?: string) => void
  error: (obj: object | string, msg?: string) => void
}

export interface ComponentLogger {
  forComponent: (name: string) => Logger
}

const noop = (): void => {}

export const noopLogger: Logger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop }

export const noopComponentLogger: ComponentLogger = { forComponent: () => noopLogger }
