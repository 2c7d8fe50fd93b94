import { timingSafeEqual, createHash } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { HttpError } from './error-handler.js'

export interface SecurityOptions {
  /** the bearer token that write requests must carry */
  token: string
  /** the address the API is bound to; loopback binds turn on the Host check */
  bindHost: string
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1'])

export function isLoopbackHost (host: string): boolean {
  return LOOPBACK_NAMES.has(host) || (isIPv4(host) && host.startsWith('127.')) || host.endsWith('.localhost')
}

/** Host header → host name without port or brackets; undefined if malformed. */
export function hostnameOf (header: string | undefined): string | undefined {
  if (header == null || header === '') return undefined
  if (header.startsWith('[')) {
    const end = header.indexOf(']')
    if (end < 0) return undefined
    const ip = header.slice(1, end)
    return isIPv6(ip) ? ip : undefined
  }
  const colon = header.indexOf(':')
  return (colon < 0 ? header : header.slice(0, colon)).toLowerCase()
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/**
 * Two guards that run before any route: when bound to a loopback address,
 * requests naming a foreign Host are refused (DNS rebinding: a web page on
 * evil.example resolving to 127.0.0.1 must not reach the daemon); and any
 * method that can write needs `Authorization: Bearer <token>`.
 */
export function installSecurity (app: FastifyInstance, opts: SecurityOptions): void {
  const checkHost = isLoopbackHost(opts.bindHost)
  const expected = digest(opts.token)

  app.decorateRequest('authorized', false)
  app.addHook('onRequest', async (request, reply) => {
    if (checkHost) {
      const name = hostnameOf(request.headers.host)
      if (name == null || !(isLoopbackHost(name) || name === opts.bindHost)) {
        throw new HttpError('ERR_FORBIDDEN_HOST', 'this daemon only answers requests addressed to localhost')
      }
    }
    reply.header('X-Content-Type-Options', 'nosniff')
    const auth = request.headers.authorization
    const match = auth != null ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null
    request.authorized = match != null && timingSafeEqual(digest(match[1]), expected)
    if (request.authorized || SAFE_METHODS.has(request.method)) return
    reply.header('WWW-Authenticate', 'Bearer realm="hearth"')
    throw new HttpError('ERR_UNAUTHORIZED', match == null ? 'this route needs a bearer token (Authorization: Bearer <token>)' : 'the bearer token is not valid')
  })
}

/** Checks a token that came another way than the header (`?token=` on a WebSocket, which browsers cannot give headers). */
export function tokenMatches (given: string | undefined, token: string): boolean {
  return given != null && given.length > 0 && given.length <= 1024 && timingSafeEqual(digest(given), digest(token))
}

/** For reads that need the token (private documents): 401 with the same code as writes. */
export function requireAuthorized (request: { authorized: boolean }, what: string): void {
  if (!request.authorized) throw new HttpError('ERR_UNAUTHORIZED', `${what} needs the bearer token (Authorization: Bearer <token>)`)
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the request carried the daemon's bearer token */
    authorized: boolean
  }
}
