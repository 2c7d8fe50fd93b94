import Fastify, { LogController } from 'fastify'
import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Logger } from '@hearth/trust'
import type { HearthNode } from '../node.js'
import { API_SCHEMA_VERSION, JSON_BODY_LIMIT } from '../constants.js'
import { HttpError, installErrorHandler } from './error-handler.js'
import { createMetrics } from './metrics.js'
import type { ApiMetrics } from './metrics.js'
import { installSecurity } from './security.js'
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
import { automergeRoutes } from './routes/automerge.js'

export interface ApiServices {
  node: HearthNode
  metrics: ApiMetrics
  version: string
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
    return503OnClosing: true,
    routerOptions: { maxParamLength: 512 },
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
  installSecurity(app, { token: init.node.token, bindHost: init.bindHost ?? init.node.config.httpHost })

  // while the disk is full, writes are refused before they start (so the reserve the
  // guard released goes to unpinning and gc); deletes, gc and dials go on
  app.addHook('onRequest', async req => {
    const disk = init.node.disk
    if (disk == null || !disk.full || !WRITE_METHODS.has(req.method) || WRITES_WHEN_FULL.has(req.routeOptions.url ?? '')) return
    if (disk.check()) throw new HttpError('ERR_DISK_FULL', 'the disk is full: nothing was written; free space (hearth pin rm, then hearth gc) and try again')
  })

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('X-Schema-Version', API_SCHEMA_VERSION)
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

  app.addSchema(ErrorBody)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Hearth daemon API',
        version: services.version,
        description: 'Local-first peer-to-peer storage. Reads are open; writes need `Authorization: Bearer <token>` (the token is in `$HEARTH_DATA/api-token` unless HEARTH_API_TOKEN is set). Errors are `{ error: CODE, message }`.'
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
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
  return app
}
