import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { P2PDisabledError } from '../../errors.js'

const Holder = Type.Object({
  device: Type.String(),
  domain: Type.String({ description: 'failure domain, region/cluster/rack' }),
  confirmed: Type.Boolean({ description: 'counts toward the target: no holding proof of this root failed since it last passed' }),
  proof: Type.Union([Type.Object({
    at: Type.String(),
    result: Type.String({ description: 'ok, wrong (bad digest or block), missing (the holder lacks the block), refused, unreachable (no answer), malformed' }),
    by: Type.String({ description: '"self" for this node\'s own challenge, else the device that reported the failure' })
  }), Type.Null()])
})

export const replicationRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  app.get('/replication/status', {
    schema: {
      tags: ['replication'],
      summary: 'Where this agent\'s pinned roots are held (target, holders with their failure domains and last holding proof, ok/degraded/repairing), and what this node holds for the agents its agent grants storage to',
      response: {
        200: Type.Object({
          schema_version: Type.String(),
          agent: Type.Union([Type.String(), Type.Null()]),
          own: Type.Array(Type.Object({
            cid: Type.String(),
            layer: Type.String(),
            size: Type.Number(),
            target: Type.Number(),
            holders: Type.Array(Holder),
            state: Type.String({ description: 'ok (target met), repairing (holders are being added), degraded (too few nodes can hold it)' })
          })),
          last_run: Type.Union([Type.String(), Type.Null()]),
          policy: Type.Array(Type.Object({ agent: Type.String(), layer: Type.String(), quota_bytes: Type.Number(), used_bytes: Type.Number() })),
          roots: Type.Array(Type.Object({
            cid: Type.String(),
            owner: Type.String(),
            layer: Type.String(),
            size: Type.Number(),
            state: Type.String({ description: 'this node\'s part: held, fetching, over-quota, failed, not-chosen' }),
            health: Type.String({ description: 'ok (target met), repairing, degraded' }),
            target: Type.Number(),
            holders: Type.Array(Holder),
            error: Type.Optional(Type.String())
          }))
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
