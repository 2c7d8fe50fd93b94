import { isDiskFull } from '@hearth/blobstore'
import type { FastifyError, FastifyInstance } from 'fastify'
import { ERROR_STATUS, FASTIFY_CODES } from './error-codes.js'

export class HttpError extends Error {
  readonly code: string
  readonly statusCode: number
  constructor (code: string, message: string) {
    super(message)
    this.code = code
    this.statusCode = ERROR_STATUS[code] ?? 500
  }
}

/**
 * One error handler for the whole API: every failure leaves as
 * `{ error: CODE, message }` with the status from ERROR_STATUS. Unknown
 * failures are logged and answered 500 without internal detail.
 */
/** Headers a route may have set for the body it meant to send; an error body must not carry them (an immutable error would be cached forever). */
const BODY_HEADERS = ['content-length', 'content-type', 'content-range', 'etag', 'cache-control', 'accept-ranges', 'last-modified', 'content-disposition']

export interface ErrorHandlerOptions {
  /** told when a request failed for lack of disk space (whichever store or file refused it) */
  onDiskFull?: () => void
}

const DISK_FULL_MESSAGE = 'the disk is full: nothing was written; free space (hearth pin rm, then hearth gc) and try again'

export function installErrorHandler (app: FastifyInstance, opts: ErrorHandlerOptions = {}): void {
  app.setErrorHandler((err: FastifyError & { code?: string }, request, reply) => {
    let code: string | undefined
    let message = err.message
    if (isDiskFull(err)) {
      code = 'ERR_DISK_FULL'
      message = DISK_FULL_MESSAGE
      try { opts.onDiskFull?.() } catch { /* the answer goes out regardless */ }
    } else if (err.validation != null) code = 'ERR_VALIDATION'
    else if (typeof err.code === 'string' && err.code in ERROR_STATUS) code = err.code
    else if (typeof err.code === 'string' && err.code in FASTIFY_CODES) code = FASTIFY_CODES[err.code]
    else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) code = 'ERR_BAD_REQUEST'

    // a 416 says the size of what could be asked for
    for (const h of BODY_HEADERS) if (!(h === 'content-range' && code === 'ERR_RANGE_NOT_SATISFIABLE')) reply.removeHeader(h)
    reply.type('application/json; charset=utf-8')
    if (code == null) {
      request.log.error({ err }, 'unhandled error')
      void reply.status(500).send({ error: 'ERR_INTERNAL', message: 'internal error' })
      return
    }
    const status = code === 'ERR_BAD_REQUEST' && typeof err.statusCode === 'number' ? err.statusCode : ERROR_STATUS[code]
    void reply.status(status).send({ error: code, message })
  })

  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}` })
  })
}
