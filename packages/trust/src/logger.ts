/**
 * The structured logger the daemon injects (pino-compatible). Libraries never
 * write to the console; they ask for a component logger instead.
 */
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
