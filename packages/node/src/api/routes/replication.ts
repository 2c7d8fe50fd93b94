import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { parseCid } from '@hearth/blobstore'
import type { ApiServices } from '../index.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { P2PDisabledError } from '../../errors.js'
import { CidParam } from './blob-views.js'

const HEALTH = 'ok (target met by proven copies on other nodes), repairing (a copy is being made or proven), degraded (some copies, fewer than the target, and no node left to make another), unprotected (no proven copy on any other node)'
const Proof = Type.Object({
  at: Type.String(),
  result: Type.String({ description: 'ok, wrong (bad digest or block), missing (the holder lacks the block), refused, unreachable (no answer), malformed' }),
  by: Type.String({ description: '"self" for this node\'s own challenge, else the device that reported the failure' })
})
const Holder = Type.Object({
  device: Type.String(),
  domain: Type.String({ description: 'failure domain, region/cluster/rack' }),
  role: Type.String({ description: 'origin (pinned it itself), own-device (a device of the owner holding a copy), grant (a node of an agent that granted storage)' }),
  confirmed: Type.Boolean({ description: 'counts toward the target: it claims the root, this node\'s last holding proof of it passed, and no failure was reported since' }),
  proof: Type.Union([Proof, Type.Null()])
})
const Candidate = Type.Object({
  device: Type.String(),
  agent: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  rule: Type.String({ description: 'own-device (a device of the owner: ranked first) or grant (a node of an agent that granted the owner storage in the layer)' }),
  grant: Type.Union([Type.String(), Type.Null()]),
  rank: Type.Number({ description: '1-based place in the rendezvous order' }),
  domain: Type.String(),
  chosen: Type.Boolean(),
  reason: Type.String({ description: 'chosen; declined, unreachable, failed-proof, over-quota (not counted on); domain-taken (its failure domain has a copy already); ranked-out (enough better-ranked nodes)' }),
  holds: Type.Boolean({ description: 'its fresh pin set claims a copy' }),
  confirmed: Type.Boolean(),
  proof: Type.Union([Proof, Type.Null()])
})

export const replicationRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  const manager = (): NonNullable<typeof node.replication> => {
    const r = node.replication
    if (r == null) throw new P2PDisabledError('replication needs p2p (ENABLE_P2P=true)')
    return r
  }

  app.get('/replication/status', {
    schema: {
      tags: ['replication'],
      summary: 'Where the roots this device pinned are held (target, proven copies, holders with their failure domains and last holding proof, health), and what this node holds for its own agent\'s other devices and for the agents its agent grants storage to',
      response: {
        200: Type.Object({
          schema_version: Type.String(),
          agent: Type.Union([Type.String(), Type.Null()]),
          own: Type.Array(Type.Object({
            cid: Type.String(),
            layer: Type.String(),
            size: Type.Number(),
            target: Type.Number({ description: 'copies wanted on nodes other than this one (HEARTH_REPLICATION_TARGETS)' }),
            copies: Type.Number({ description: 'proven copies on other nodes' }),
            repairing: Type.Boolean({ description: 'a chosen node is fetching the root or has yet to prove its copy' }),
            holders: Type.Array(Holder),
            state: Type.String({ description: HEALTH })
          })),
          last_run: Type.Union([Type.String(), Type.Null()]),
          policy: Type.Array(Type.Object({
            agent: Type.String(),
            layer: Type.String(),
            rule: Type.String({ description: 'own-device (copies for this node\'s own agent) or grant' }),
            quota_bytes: Type.Union([Type.Number(), Type.Null()], { description: 'null: only the layer\'s own quota bounds it' }),
            used_bytes: Type.Number()
          })),
          roots: Type.Array(Type.Object({
            cid: Type.String(),
            owner: Type.String(),
            layer: Type.String(),
            size: Type.Number(),
            state: Type.String({ description: 'this node\'s part: held, fetching, over-quota, failed, not-chosen, declined' }),
            health: Type.String({ description: HEALTH }),
            target: Type.Number(),
            holders: Type.Array(Holder),
            error: Type.Optional(Type.String())
          }))
        }),
        ...errorResponses(409)
      }
    }
  }, async () => ({ schema_version: API_SCHEMA_VERSION, ...manager().status() }))

  app.get('/replication/explain/:cid', {
    schema: {
      tags: ['replication'],
      summary: 'Why a root is (or is not) held here, and where it is held: the pins here, the own-agent or grant rule, quota, rendezvous rank and failure domain, last proof; for a root this device pinned, why each candidate was or was not chosen',
      params: CidParam,
      response: {
        200: Type.Object({
          schema_version: Type.String(),
          cid: Type.String(),
          device: Type.String(),
          agent: Type.Union([Type.String(), Type.Null()]),
          last_run: Type.Union([Type.String(), Type.Null()]),
          pins: Type.Array(Type.Object({
            layer: Type.String(),
            owner: Type.Union([Type.String(), Type.Null()]),
            why: Type.String()
          }), { description: 'the pins of the root on this node' }),
          cached: Type.Boolean({ description: 'the blob is here without a pin: in the LRU cache, evictable' }),
          as_owner: Type.Array(Type.Object({
            layer: Type.String(),
            target: Type.Number(),
            need: Type.Number(),
            copies: Type.Number(),
            state: Type.String({ description: HEALTH }),
            origins: Type.Array(Type.String()),
            candidates: Type.Array(Candidate),
            why: Type.String()
          })),
          as_holder: Type.Array(Type.Object({
            owner: Type.String(),
            layer: Type.String(),
            rule: Type.String(),
            grant: Type.Union([Type.Object({ id: Type.String(), quota_bytes: Type.Number() }), Type.Null()]),
            relationships: Type.Array(Type.String()),
            state: Type.String(),
            error: Type.Union([Type.String(), Type.Null()]),
            quota: Type.Object({ quota_bytes: Type.Union([Type.Number(), Type.Null()]), used_bytes: Type.Number(), left_bytes: Type.Union([Type.Number(), Type.Null()]) }),
            rank: Type.Union([Type.Number(), Type.Null()]),
            candidates_total: Type.Number(),
            domain: Type.String(),
            chosen: Type.Boolean(),
            reason: Type.String(),
            last_proof: Type.Union([Type.Object({ at: Type.String(), device: Type.String(), answer: Type.String() }), Type.Null()]),
            why: Type.String(),
            candidates: Type.Array(Candidate)
          }))
        }),
        ...errorResponses(400, 409)
      }
    }
  }, async req => {
    const cid = parseCid(req.params.cid).toString()
    const explanation = manager().explain(cid)
    const agent = node.trust.agentId
    const pins = (await node.blobs.pins({ cid })).map(p => ({
      layer: p.layer,
      owner: p.owner ?? null,
      why: p.owner == null
        ? `pinned here by this device for its agent (${p.layer}): copies go to its other devices and to nodes that granted it ${p.layer} storage`
        : p.owner === agent
          ? `a copy for this node's own agent, of a root another of its devices pinned (${p.layer})`
          : `a copy for ${p.owner} under a storage grant (${p.layer})`
    }))
    const cached = pins.length === 0 && await node.blobs.has(cid)
    return { schema_version: API_SCHEMA_VERSION, ...explanation, pins, cached }
  })
}
