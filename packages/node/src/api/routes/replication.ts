import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { P2PDisabledError } from '../../errors.js'

export const replicationRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  app.get('/replication/status', {
    schema: {
      tags: ['replication'],
      summary: 'What this node holds for other agents under the grants its agent gave: per grant the quota and use, per root its state',
      response: {
        200: Type.Object({
          schema_version: Type.String(),
          agent: Type.Union([Type.String(), Type.Null()]),
          last_run: Type.Union([Type.String(), Type.Null()]),
          policy: Type.Array(Type.Object({ agent: Type.String(), layer: Type.String(), quota_bytes: Type.Number(), used_bytes: Type.Number() })),
          roots: Type.Array(Type.Object({ cid: Type.String(), owner: Type.String(), layer: Type.String(), size: Type.Number(), state: Type.String(), error: Type.Optional(Type.String()) }))
        }),
        ...errorResponses(409)
      }
    }
  }, async () => {
    const r = node.replication
    if (r == null) throw new P2PDisabledError('replication needs p2p (ENABLE_P2P=true)')
    return { schema_version: API_SCHEMA_VERSION, ...r.status() }
  })
}
