import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'

/** A request body must bring at least this many bytes per window while it is being read */
export const BODY_MIN_BYTES = 1024
export const BODY_WINDOW_MS = 10_000

function rawJson (status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify({ error: code, message })
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request (headers too
 * large, a malformed request line or header, a request that timed out)
 * answers in the API's error form, without echoing any of the input.
 */
export function clientErrorHandler (err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) { socket.destroy(); return }
  const text = err.code === 'HPE_HEADER_OVERFLOW'
    ? rawJson(431, 'Request Header Fields Too Large', 'ERR_HEADERS_TOO_LARGE', 'the request headers are larger than the server takes (16 KiB)')
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? rawJson(408, 'Request Timeout', 'ERR_REQUEST_TIMEOUT', 'the request took too long to arrive')
      : rawJson(400, 'Bad Request', 'ERR_BAD_REQUEST', 'the request is not valid HTTP')
  socket.end(text)
}

/**
 * A request body that dribbles is cut: while the daemon is reading it (not
 * holding it back itself, as an upload waiting on the disk does), it must
 * bring BODY_MIN_BYTES every BODY_WINDOW_MS. An idle socket is cut sooner by
 * the connection timeout; a body that keeps moving may take as long as it
 * needs. The cut answers 408 ERR_REQUEST_TIMEOUT if nothing was sent yet, and
 * an upload cut this way leaves nothing, as any aborted upload.
 */
export function installBodyDeadline (app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    const raw = req.raw
    const hasBody = (raw.headers['content-length'] != null && raw.headers['content-length'] !== '0') || raw.headers['transfer-encoding'] != null
    if (!hasBody) return
    const socket = raw.socket
    let seen = socket.bytesRead
    const timer = setInterval(() => {
      if (raw.complete || socket.destroyed) { clearInterval(timer); return }
      const now = socket.bytesRead
      const moved = now - seen
      seen = now
      // bytes waiting unread mean this side holds the body back (backpressure), not the client
      if (raw.readableLength > 0 || moved >= BODY_MIN_BYTES) return
      clearInterval(timer)
      req.log.warn({ method: req.method, url: req.url.split('?')[0].slice(0, 200), bytes_in_window: moved }, 'request body too slow: cut')
      if (!socket.writableEnded && !reply.raw.headersSent) {
        socket.end(rawJson(408, 'Request Timeout', 'ERR_REQUEST_TIMEOUT', `the request body brought less than ${BODY_MIN_BYTES} bytes in ${BODY_WINDOW_MS / 1000} s`))
      }
      socket.destroy?.()
    }, BODY_WINDOW_MS)
    timer.unref?.()
    const stop = (): void => { clearInterval(timer) }
    raw.once('close', stop)
    raw.once('end', stop)
    // once answered, how the body arrives no longer matters (an injected request's socket has neither bytesRead nor destroy)
    reply.raw.once('finish', stop)
  })
}
