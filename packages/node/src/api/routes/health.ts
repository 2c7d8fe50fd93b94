import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'

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

  app.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'] }
  }, async (_req, reply) => {
    const text = await metrics.registry.metrics()
    return await reply.type(metrics.registry.contentType).send(text)
  })
}
