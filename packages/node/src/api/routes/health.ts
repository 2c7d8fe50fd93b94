import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'
import { describeConfig } from '../../config/describe.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'

const Health = Type.Object({
  status: Type.Literal('ok'),
  uptime_s: Type.Number(),
  version: Type.String()
})

const Ready = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Object({
    store: Type.Boolean(),
    blobs: Type.Boolean(),
    p2p: Type.Union([Type.Boolean(), Type.Literal('disabled')]),
    disk: Type.Union([Type.Literal('ok'), Type.Literal('full')], { description: 'full: writes answer 507 ERR_DISK_FULL until space is freed; reads go on, so the node stays ready' })
  })
})

export const healthRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node, version, metrics }) => {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: Health } }
  }, async () => ({ status: 'ok' as const, uptime_s: Math.round(process.uptime() * 10) / 10, version }))

  app.get('/ready', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: the store is open and the libp2p host started (503 otherwise)',
      response: { 200: Ready, 503: Ready }
    }
  }, async (_req, reply) => {
    const r = node.readiness()
    return await reply.status(r.ready ? 200 : 503).send(r)
  })

  app.get('/config', {
    schema: {
      tags: ['operations'],
      summary: 'The effective settings, where each came from (flag, env, file or default); secrets are shown only as set (admin)',
      security: [{ bearer: [] }],
      response: {
        200: Type.Object({
          schema_version: Type.String(),
          version: Type.String(),
          config_file: Type.Union([Type.String(), Type.Null()]),
          settings: Type.Array(Type.Object({
            key: Type.String({ description: 'the config file key' }),
            env: Type.String(),
            flag: Type.String(),
            value: Type.Unknown({ description: 'as the config file would spell it; secrets "(set)" or null' }),
            source: Type.Union([Type.Literal('flag'), Type.Literal('env'), Type.Literal('file'), Type.Literal('default')])
          }))
        }),
        ...errorResponses(401, 403)
      }
    }
  }, async () => ({ schema_version: API_SCHEMA_VERSION, version, ...describeConfig(node.config) }))

  app.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'] }
  }, async (_req, reply) => {
    const text = await metrics.registry.metrics()
    return await reply.type(metrics.registry.contentType).send(text)
  })
}
