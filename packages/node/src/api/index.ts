import Fastify, { LogController } from 'fastify'
import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Logger } from '@hearth/trust'
import type { HearthNode } from '../node.js'
import { API_SCHEMA_VERSION, JSON_BODY_LIMIT, PEER_HEADER } from '../constants.js'
import { HttpError, installErrorHandler } from './error-handler.js'
import { createMetrics } from './metrics.js'
import { installSchemaVersion } from './schema-version.js'
import type { ApiMetrics } from './metrics.js'
import { installSecurity, isLoopbackHost } from './security.js'
import cors from '@fastify/cors'
import { tokenRoutes } from './routes/tokens.js'
import { clientErrorHandler, installBodyDeadline } from './client-errors.js'
import { ErrorBody } from './schemas.js'
import { healthRoutes } from './routes/health.js'
import { p2pRoutes } from './routes/p2p.js'
import { blobRoutes } from './routes/blobs.js'
import { gatewayRoutes } from './routes/gateway.js'
import { pinRoutes } from './routes/pins.js'
import { trustRoutes } from './routes/trust.js'
import { replicationRoutes } from './routes/replication.js'
import { docRoutes } from './routes/docs.js'
import { docStreamRoutes } from './routes/doc-streams.js'
import { AUTOMERGE_OPENAPI, automergeRoutes } from './routes/automerge.js'

export interface ApiServices {
  node: HearthNode
  metrics: ApiMetrics
  version: string
}

/** Whether reads need no token: as configured, else only on a loopback bind */
export function openReadsFor (config: { openReads: boolean | undefined, httpHost: string }, bindHost = config.httpHost): boolean {
  return config.openReads ?? isLoopbackHost(bindHost)
}

export interface BuildApiInit {
  node: HearthNode
  /** the daemon's HTTP logger; request lines go out at debug level */
  log?: Logger
  version?: string
  /** the address the server will be bound to (turns on the Host check for loopback) */
  bindHost?: string
  /** log lines dropped because stdout could not take them (see DroppingWriter) */
  logDropped?: () => number
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH'])
/** writes that free space or touch no disk: accepted while the disk is full */
const WRITES_WHEN_FULL = new Set(['/storage/gc', '/p2p/connect'])

/** Timeouts and limits every client gets. */
export const HTTP_LIMITS = {
  connectionTimeout: 30_000,
  keepAliveTimeout: 5_000,
  // no bound on a whole request: uploads of any size stream for as long as
  // they keep moving; an idle socket is cut by connectionTimeout instead
  requestTimeout: 0,
  bodyLimit: JSON_BODY_LIMIT
}

/**
 * Builds the HTTP API over a started node. It does not listen: the daemon
 * does, and tests call `app.inject()`.
 */
export async function buildApi (init: BuildApiInit): Promise<FastifyInstance> {
  const app = Fastify({
    ...HTTP_LIMITS,
    forceCloseConnections: 'idle',
    clientErrorHandler,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 512 },
    // the router's own refusals (a bad percent-encoding, a path segment over 512
    // characters) answer in our error form, without echoing the URL
    frameworkErrors: (err, _req, reply: any) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      void reply.code(tooLong ? 414 : 400).type('application/json; charset=utf-8').send(tooLong
        ? { error: 'ERR_URL_TOO_LONG', message: 'a path segment is longer than 512 characters' }
        : { error: 'ERR_BAD_URL', message: 'the URL is not valid (a malformed percent-encoding)' })
    },
    // request lines are logged by our onResponse hook, at debug level
    logController: new LogController({ disableRequestLogging: true }),
    ...(init.log != null ? { loggerInstance: init.log as any } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } }
  }).withTypeProvider<TypeBoxTypeProvider>()

  const metrics = createMetrics(init.node, { logDropped: init.logDropped })
  const services: ApiServices = { node: init.node, metrics, version: init.version ?? '0.0.0' }

  installErrorHandler(app, { onDiskFull: () => { init.node.disk?.markFull('http request') } })
  // JSON only by default: a text body sent to a JSON route is a 415, not a
  // validation error. Routes that take raw bytes register their own parser.
  app.removeContentTypeParser('text/plain')
  installBodyDeadline(app)
  const bindHost = init.bindHost ?? init.node.config.httpHost
  // CORS only for the origins named: preflights answer before the token check, and no other origin gets a header
  const origins = init.node.config.corsOrigins
  if (origins.length > 0) {
    await app.register(cors, {
      origin: origins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'If-None-Match', 'Range', 'Last-Event-ID', 'X-Schema-Version'],
      exposedHeaders: ['ETag', 'Content-Range', 'Content-Length', 'X-Schema-Version', 'X-Supported-Schema-Versions', 'Retry-After', 'Location'],
      maxAge: 600
    })
  }
  await installSecurity(app, { tokens: init.node.tokens, bindHost, openReads: openReadsFor(init.node.config, bindHost), writesPerMinute: init.node.config.httpWriteRate })

  // while the disk is full, writes are refused before they start (so the reserve the
  // guard released goes to unpinning and gc); deletes, gc and dials go on
  app.addHook('onRequest', async req => {
    const disk = init.node.disk
    if (disk == null || !disk.full || !WRITE_METHODS.has(req.method) || WRITES_WHEN_FULL.has(req.routeOptions.url ?? '')) return
    if (disk.check()) throw new HttpError('ERR_DISK_FULL', 'the disk is full: nothing was written; free space (hearth pin rm, then hearth gc) and try again')
  })

  const peerId = init.node.peerId.toString()
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('X-Schema-Version', API_SCHEMA_VERSION)
    reply.header(PEER_HEADER, peerId)
    return payload
  })
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) })
    metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000)
    // the automerge-repo socket takes the token in its URL: never write it to the log
    const url = req.url.replace(/([?&]token=)[^&]*/g, '$1<redacted>')
    if (reply.statusCode >= 500) req.log.warn({ method: req.method, url, status: reply.statusCode }, 'request failed')
    else req.log.debug({ method: req.method, url, status: reply.statusCode, ms: reply.elapsedTime }, 'request')
  })

  installSchemaVersion(app)
  app.addSchema(ErrorBody)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Hearth daemon API',
        version: services.version,
        description: 'Local-first peer-to-peer storage. Requests carry `Authorization: Bearer <token>`: the daemon\'s own token (`$HEARTH_DATA/api-token`, or HEARTH_API_TOKEN) is an admin token; `hearth token create --scope read|write|admin` makes scoped ones. `read` covers every GET (needed only when HEARTH_OPEN_READS is false, the default beyond loopback), `write` adds blob, pin and document writes, `admin` adds trust, tokens, peers and gc. Errors are `{ error: CODE, message }`; 401 ERR_UNAUTHORIZED without a valid token, 403 ERR_FORBIDDEN when its scope falls short, 429 ERR_RATE_LIMITED (with Retry-After) after 30 failed authentications a minute from one address or HEARTH_HTTP_WRITE_RATE writes a minute from one client. Every JSON view carries `schema_version` ("1.0"), as the `X-Schema-Version` header of every answer does; times are ISO 8601 UTC. A request may send `X-Schema-Version` (a major, or major.minor): one this daemon cannot serve is refused with 400 ERR_UNSUPPORTED_SCHEMA_VERSION and `X-Supported-Schema-Versions`.'
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
    },
    transformObject: doc => {
      const openapi = 'openapiObject' in doc ? doc.openapiObject : doc.swaggerObject
      return { ...openapi, paths: { ...openapi.paths, '/automerge': AUTOMERGE_OPENAPI } } as any
    }
  })
  // `/docs` is the document API; the interactive API reference lives beside the OpenAPI document
  await app.register(swaggerUi, { routePrefix: '/api-docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  await app.register(healthRoutes, services)
  await app.register(p2pRoutes, services)
  await app.register(blobRoutes, services)
  await app.register(pinRoutes, services)
  await app.register(gatewayRoutes, services)
  await app.register(trustRoutes, services)
  await app.register(replicationRoutes, services)
  await app.register(docRoutes, services)
  await app.register(docStreamRoutes, services)
  await app.register(automergeRoutes, services)
  await app.register(tokenRoutes, services)
  return app
}
