import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RELATIONSHIP_KINDS, STORAGE_LAYERS, verifyStatement } from '@hearth/trust'
import type { GraphSnapshot } from '@hearth/trust'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { AgentNotFoundError, P2PDisabledError } from '../../errors.js'
import { parseSize } from '../../config/parsers.js'
import { agentInUse } from '../../trust/join-check.js'

const KeyIdSchema = Type.String({ minLength: 40, maxLength: 64, pattern: '^z[1-9A-HJ-NP-Za-km-z]+$', description: 'an agent or device id (z6Mk…)' })
const LabelsSchema = Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_.-]{0,62}$' }), Type.String({ maxLength: 253 }), { maxProperties: 16 })
const Days = Type.Integer({ minimum: 1, maximum: 3650, default: 365 })
const Self = Type.Object({
  schema_version: Type.String(),
  device_id: Type.String(),
  agent_id: Type.Union([Type.String(), Type.Null()]),
  has_agent_key: Type.Boolean(),
  certificate: Type.Union([Type.String(), Type.Null()]),
  certificate_expires_at: Type.Union([Type.String(), Type.Null()])
})
const StatementRef = Type.Object({ id: Type.String() })
const MAX_BATCH = 100

/** JSON views of the graph's records: snake_case, ISO times. */
const iso = (ms: number): string => new Date(ms).toISOString()

/** The trust library's snapshot as an API view: the view's schema version (the statements' own as statement_schema_version), ISO times */
function graphView (snap: GraphSnapshot): Record<string, unknown> {
  const { schema_version: statements, generated_at: generated, agents, relationships, grants, ...rest } = snap
  return {
    schema_version: API_SCHEMA_VERSION,
    statement_schema_version: statements.join('.'),
    generated_at: iso(generated),
    ...rest,
    agents: agents.map(a => ({ ...a, devices: a.devices.map(d => ({ ...d, expires_at: iso(d.expires_at) })) })),
    relationships: relationships.map(r => ({ ...r, expires_at: iso(r.expires_at) })),
    grants: grants.map(g => ({ ...g, expires_at: iso(g.expires_at) }))
  }
}

export const trustRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  const trust = (): typeof node.trust => node.trust

  app.get('/trust/self', {
    schema: { tags: ['trust'], summary: 'This device\'s id, the agent it acts for, and whether it holds the agent key', response: { 200: Self } }
  }, async () => ({ schema_version: API_SCHEMA_VERSION, ...trust().self() }))

  app.post('/trust/init', {
    schema: { tags: ['trust'], summary: 'Create an agent on this device (its key stays here) and certify this device', security: [{ bearer: [] }], response: { 200: Self, ...errorResponses(401, 409) } }
  }, async () => ({ schema_version: API_SCHEMA_VERSION, ...await trust().initAgent() }))

  app.get('/trust/agents/:id', {
    schema: {
      tags: ['trust'],
      summary: 'An agent: its keys, devices, relationships and grants',
      params: Type.Object({ id: KeyIdSchema }),
      response: { 200: Type.Object({}, { additionalProperties: true }), ...errorResponses(400, 404) }
    }
  }, async req => {
    const g = trust().graph
    const id = g.resolveAgent(req.params.id)
    const agent = g.agent(id)
    const relationships = g.relationships(id)
    const given = g.grantsGiven(id)
    const received = g.grantsReceived(id)
    if (agent.devices.length === 0 && relationships.length === 0 && given.length === 0 && received.length === 0 && agent.keys.length <= 1) {
      throw new AgentNotFoundError(`no valid statement names agent ${req.params.id}`)
    }
    const grant = (x: typeof given[number]): Record<string, unknown> => ({ id: x.id, grantor: x.grantor, grantee: x.grantee, layer: x.layer, quota_bytes: x.quotaBytes, labels: x.labels, issued_at: iso(x.issuedAt), expires_at: iso(x.expiresAt) })
    return {
      schema_version: API_SCHEMA_VERSION,
      id: agent.id,
      current_key: agent.currentKey,
      keys: agent.keys.map(k => ({ key: k.key, activated_at: k.activatedAt != null ? iso(k.activatedAt) : null, rotated_at: k.rotatedAt != null ? iso(k.rotatedAt) : null })),
      devices: agent.devices.map(d => ({ device: d.device, name: d.name ?? null, labels: d.labels, certificate: d.certificate, issued_at: iso(d.issuedAt), expires_at: iso(d.expiresAt) })),
      relationships: relationships.map(r => ({ agent: r.agent, kind: r.kind, mutual: r.mutual, outgoing: r.outgoing ?? null, incoming: r.incoming ?? null })),
      grants_given: given.map(grant),
      grants_received: received.map(grant)
    }
  })

  app.get('/trust/graph', {
    schema: { tags: ['trust'], summary: 'The valid statements this node knows, as agents, devices, relationships and grants', querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) }) }
  }, async req => graphView(trust().graph.graphSnapshot({ limit: req.query.limit })))

  app.post('/trust/statements', {
    schema: {
      tags: ['trust'],
      summary: 'Store signed statements (base64 of their wire bytes). All are verified first: one bad statement refuses the whole batch.',
      security: [{ bearer: [] }],
      body: Type.Object({ statements: Type.Array(Type.String({ minLength: 1, maxLength: 32 * 1024 }), { minItems: 1, maxItems: MAX_BATCH }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ results: Type.Array(Type.Object({ id: Type.String(), added: Type.Boolean(), valid: Type.Boolean() })) }), ...errorResponses(400, 401, 413) }
    }
  }, async req => {
    const decoded = req.body.statements.map((s, i) => {
      if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) throw new HttpError('ERR_MALFORMED_STATEMENT', `statement ${i} is not base64`)
      return new Uint8Array(Buffer.from(s, 'base64'))
    })
    // verify everything before storing anything
    for (const [i, bytes] of decoded.entries()) {
      try {
        verifyStatement(bytes)
      } catch (err: any) {
        err.message = `statement ${i}: ${err.message}`
        throw err
      }
    }
    return { results: decoded.map(bytes => { const r = trust().graph.add(bytes); return { id: r.id, added: r.added, valid: r.valid } }) }
  })

  app.post('/trust/relationships', {
    schema: {
      tags: ['trust'],
      summary: 'Attest a relationship with another agent (signed with this device\'s agent key)',
      security: [{ bearer: [] }],
      body: Type.Object({ agent: KeyIdSchema, kind: Type.Unsafe<'family' | 'friend' | 'community'>({ type: 'string', enum: [...RELATIONSHIP_KINDS] }), expires_in_days: Type.Optional(Days) }, { additionalProperties: false }),
      response: { 201: StatementRef, ...errorResponses(400, 401, 409) }
    }
  }, async (req, reply) => await reply.code(201).send({ id: trust().relate(req.body.agent, req.body.kind, req.body.expires_in_days ?? 365) }))

  app.post('/trust/grants', {
    schema: {
      tags: ['trust'],
      summary: 'Offer another agent storage in a layer, up to a quota, optionally only on nodes with given labels',
      security: [{ bearer: [] }],
      body: Type.Object({
        agent: KeyIdSchema,
        layer: Type.Unsafe<'sovereign' | 'reciprocal' | 'invested' | 'gift'>({ type: 'string', enum: [...STORAGE_LAYERS] }),
        quota: Type.Union([Type.Integer({ minimum: 1 }), Type.String({ maxLength: 32, description: 'e.g. 20GiB' })]),
        labels: Type.Optional(LabelsSchema),
        expires_in_days: Type.Optional(Days)
      }, { additionalProperties: false }),
      response: { 201: StatementRef, ...errorResponses(400, 401, 409) }
    }
  }, async (req, reply) => {
    let quota: number
    try { quota = parseSize(req.body.quota, 'quota') } catch (err: any) { throw new HttpError('ERR_VALIDATION', err.message) }
    if (quota <= 0) throw new HttpError('ERR_VALIDATION', 'quota must be more than 0 bytes')
    return await reply.code(201).send({ id: trust().grant(req.body.agent, req.body.layer, quota, req.body.labels ?? {}, req.body.expires_in_days ?? 365) })
  })

  app.post('/trust/revocations', {
    schema: {
      tags: ['trust'],
      summary: 'Revoke one of this agent\'s certificates, relationships or grants by statement id',
      security: [{ bearer: [] }],
      body: Type.Object({ target: Type.String({ minLength: 10, maxLength: 128 }) }, { additionalProperties: false }),
      response: { 201: StatementRef, ...errorResponses(400, 401, 409) }
    }
  }, async (req, reply) => await reply.code(201).send({ id: trust().revoke(req.body.target) }))

  app.post('/trust/invites', {
    schema: {
      tags: ['trust'],
      summary: 'A one-time invitation (15 minutes) for a new device to join this agent',
      security: [{ bearer: [] }],
      response: { 201: Type.Object({ invitation: Type.String(), expires_at: Type.String() }), ...errorResponses(401, 409) }
    }
  }, async (_req, reply) => {
    const host = node.host
    if (host == null) throw new P2PDisabledError('pairing needs p2p (ENABLE_P2P=true): the new device reaches this one over libp2p')
    const addrs = host.getMultiaddrs().map(a => a.toString()).slice(0, 8)
    const { invitation, expiresAt } = trust().createInvite(node.peerId.toString(), addrs)
    return await reply.code(201).send({ invitation, expires_at: iso(expiresAt) })
  })

  app.post('/trust/join', {
    schema: {
      tags: ['trust'],
      summary: 'Redeem an invitation from another device of an agent: this device receives a certificate from that agent',
      security: [{ bearer: [] }],
      body: Type.Object({ invitation: Type.String({ minLength: 10, maxLength: 4096 }), name: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false }),
      response: { 200: Self, ...errorResponses(400, 401, 403, 409, 502) }
    }
  }, async req => {
    const exchange = node.trustExchange
    if (exchange == null) throw new P2PDisabledError('pairing needs p2p (ENABLE_P2P=true)')
    const current = trust().self()
    const inUse = async (): Promise<void> => {
      const why = current.agent_id == null ? undefined : await agentInUse({ trust: trust(), docs: node.docs, blobs: node.blobs })
      if (why != null) throw new HttpError('ERR_ALREADY_JOINED', `${why}: this device cannot join another agent`)
    }
    await inUse()
    const self = await exchange.join(req.body.invitation, {
      name: req.body.name,
      labels: node.config.labels,
      // a first-start agent with nothing of its own is given up for the one joined
      beforeAdopt: async () => {
        if (current.agent_id == null) return
        await inUse()
        await trust().retireAgent()
      }
    })
    return { schema_version: API_SCHEMA_VERSION, ...self }
  })
}

