import { isIPv4, isIPv6 } from 'node:net'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { HttpError } from './error-handler.js'
import { allows } from './tokens.js'
import type { Access, ApiTokens } from './tokens.js'

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

/** Routes anyone may ask, whatever HEARTH_OPEN_READS says: liveness and readiness */
const PUBLIC_ROUTES = new Set(['/health', '/ready'])
/** Writes that change who this node trusts, which tokens exist, which peers it dials, or collect garbage */
const ADMIN_PREFIXES = ['/trust/', '/tokens', '/p2p/', '/storage/gc']
/** failed authentications one address may make per minute before it is refused for the rest of it */
export const FAILED_AUTH_PER_MINUTE = 30

export interface SecurityOptions {
  /** checks presented tokens */
  tokens: ApiTokens
  /** the address the API is bound to; loopback binds turn on the Host check */
  bindHost: string
  /** reads answer without a token */
  openReads: boolean
  /** writes one client may make per minute */
  writesPerMinute: number
}

/** What `route` (Fastify's pattern, or the raw path if none matched) asked with `method` needs */
export function accessNeeded (method: string, route: string, openReads: boolean): Access {
  if (PUBLIC_ROUTES.has(route) || method === 'OPTIONS') return 'none'
  const under = (p: string): boolean => p.endsWith('/') ? route.startsWith(p) : route === p || route.startsWith(`${p}/`)
  // listing tokens and the effective settings are the reads that need admin
  if (SAFE_METHODS.has(method)) return under('/tokens') || under('/config') ? 'admin' : openReads ? 'none' : 'read'
  return ADMIN_PREFIXES.some(under) ? 'admin' : 'write'
}

/**
 * The guards that run before any route: when bound to a loopback address,
 * requests naming a foreign Host are refused (DNS rebinding: a web page on
 * evil.example resolving to 127.0.0.1 must not reach the daemon); the bearer
 * token decides what the request may do (see {@link accessNeeded}); an
 * address that keeps presenting wrong tokens is refused for a minute; and
 * each client's writes are rate limited.
 */
export async function installSecurity (app: FastifyInstance, opts: SecurityOptions): Promise<void> {
  const checkHost = isLoopbackHost(opts.bindHost)
  await app.register(rateLimit, { global: false })
  const failures = app.createRateLimit({ max: FAILED_AUTH_PER_MINUTE, timeWindow: 60_000, keyGenerator: req => `auth:${req.ip}` })
  const writes = app.createRateLimit({ max: opts.writesPerMinute, timeWindow: 60_000, keyGenerator: req => `write:${req.tokenId ?? req.ip}` })

  app.decorateRequest('authorized', false)
  app.decorateRequest('access', 'none')
  app.decorateRequest('tokenId', undefined)
  app.addHook('onRequest', async (request, reply) => {
    if (checkHost) {
      const name = hostnameOf(request.headers.host)
      if (name == null || !(isLoopbackHost(name) || name === opts.bindHost)) {
        throw new HttpError('ERR_FORBIDDEN_HOST', 'this daemon only answers requests addressed to localhost')
      }
    }
    reply.header('X-Content-Type-Options', 'nosniff')
    const route = request.routeOptions.url ?? request.url.split('?')[0]
    const auth = request.headers.authorization
    let given = auth != null ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined
    // browsers cannot give a WebSocket headers: the automerge-repo socket takes ?token=
    if (given == null && route === '/automerge') given = queryToken(request.url)
    const presented = given != null || auth != null
    if (presented) {
      const checked = given != null ? opts.tokens.check(given) : { access: 'none' as const }
      if (checked.access === 'none') {
        // a valid token always passes; wrong ones from one address are refused once it used its failures up
        const failed = await failures(request)
        if (!failed.isAllowed && failed.isExceeded) tooMany(reply, failed.ttlInSeconds, `more than ${FAILED_AUTH_PER_MINUTE} failed authentications a minute from this address`)
      }
      request.access = checked.access
      request.tokenId = checked.id
    }
    request.authorized = request.access !== 'none'
    const needed = accessNeeded(request.method, route, opts.openReads)
    if (!allows(request.access, needed)) {
      if (request.access === 'none') {
        reply.header('WWW-Authenticate', 'Bearer realm="hearth"')
        throw new HttpError('ERR_UNAUTHORIZED', !presented ? `this route needs a bearer token with the ${needed} scope (Authorization: Bearer <token>)` : 'the bearer token is not valid')
      }
      throw new HttpError('ERR_FORBIDDEN', `this route needs the ${needed} scope; the token has ${request.access}`)
    }
    if (!SAFE_METHODS.has(request.method)) {
      const w = await writes(request)
      if (!w.isAllowed && w.isExceeded) tooMany(reply, w.ttlInSeconds, `at most ${opts.writesPerMinute} writes a minute per client (HEARTH_HTTP_WRITE_RATE)`)
    }
  })
}

function tooMany (reply: FastifyReply, retryAfterS: number, message: string): never {
  reply.header('Retry-After', String(Math.max(1, retryAfterS)))
  throw new HttpError('ERR_RATE_LIMITED', message)
}

function queryToken (url: string): string | undefined {
  const q = url.indexOf('?')
  if (q < 0) return undefined
  const t = new URLSearchParams(url.slice(q + 1)).get('token')
  return t != null && t.length > 0 ? t : undefined
}

/** For reads that need a token (private documents): 401 with the same code as writes. */
export function requireAuthorized (request: { authorized: boolean }, what: string): void {
  if (!request.authorized) throw new HttpError('ERR_UNAUTHORIZED', `${what} needs a bearer token (Authorization: Bearer <token>)`)
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the request carried a valid token (of any scope) */
    authorized: boolean
    /** what the request's token may do */
    access: Access
    /** the token's id (`admin` for the daemon's own), for rate limits */
    tokenId?: string
  }
}
