import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'
import { errorResponses } from '../schemas.js'

const Peer = Type.Object({
  peer_id: Type.String(),
  addrs: Type.Array(Type.String()),
  direction: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]),
  latency_ms: Type.Union([Type.Number(), Type.Null()]),
  connected_at: Type.String({ format: 'date-time' }),
  class: Type.Union([Type.Literal('linked'), Type.Literal('bootstrap'), Type.Literal('known'), Type.Literal('stranger')], { description: 'linked: a device of this agent or of one it relates to or shares storage with; bootstrap; known: a certified device of an agent this agent or a linked one vouched for; stranger: anyone else, who gets the smallest share' }),
  path: Type.Union([Type.Literal('direct'), Type.Literal('relayed')], { description: 'relayed: reached only through a circuit relay, within its time and data limits' })
})

const P2PStatus = Type.Object({
  schema_version: Type.String(),
  enabled: Type.Boolean(),
  peer_id: Type.String(),
  addresses: Type.Array(Type.String()),
  labels: Type.Record(Type.String(), Type.String()),
  mdns: Type.Boolean(),
  peers: Type.Array(Peer),
  bootstrap: Type.Object({
    configured: Type.Array(Type.String()),
    discovered: Type.Array(Type.String({ description: 'addresses found through HEARTH_BOOTSTRAP_DNS' })),
    connected: Type.Array(Type.Object({ addr: Type.String(), peer_id: Type.String() })),
    pending: Type.Array(Type.Object({ addr: Type.String(), failures: Type.Number(), last_error: Type.Optional(Type.String()) })),
    dns: Type.Union([Type.Null(), Type.Object({
      name: Type.String(),
      addresses: Type.Array(Type.String()),
      last_resolved: Type.Union([Type.String(), Type.Null()]),
      last_error: Type.Union([Type.String(), Type.Null()])
    })])
  }),
  replication: Type.Union([Type.Null(), Type.Object({
    agent: Type.Union([Type.String(), Type.Null()]),
    roots: Type.Number({ description: 'roots of other agents this node holds or may hold' }),
    held: Type.Number(),
    own: Type.Object({ ok: Type.Number(), repairing: Type.Number(), degraded: Type.Number(), unprotected: Type.Number() }, { description: 'roots this device pinned, by replication health (see GET /replication/status)' }),
    last_run: Type.Union([Type.String(), Type.Null()])
  })]),
  sync: Type.Object({
    loaded: Type.Boolean({ description: 'false until something needed documents (the store opens on first use)' }),
    documents: Type.Number(),
    pending: Type.Number({ description: 'documents waiting for a sync message, over all sessions' }),
    accepted_changes: Type.Number(),
    rejected_messages: Type.Number(),
    rejected_by_store: Type.Number(),
    clients: Type.Number({ description: 'automerge-repo clients on /automerge' }),
    sessions: Type.Array(Type.Object({
      peer_id: Type.String(),
      device: Type.String(),
      agent: Type.Union([Type.String(), Type.Null()]),
      initiator: Type.Union([Type.Literal('self'), Type.Literal('peer')]),
      opened_at: Type.String({ format: 'date-time' }),
      subscribed: Type.Number(),
      peer_subscribed: Type.Number(),
      pending: Type.Number(),
      in_flight: Type.Number(),
      sent_messages: Type.Number(),
      sent_bytes: Type.Number(),
      received_messages: Type.Number(),
      received_bytes: Type.Number(),
      accepted_changes: Type.Number(),
      rejected_messages: Type.Number()
    }))
  }),
  limits: Type.Union([Type.Null(), Type.Object({
    budget: Type.Object({
      total_bytes: Type.Number({ description: 'HEARTH_P2P_INBOUND_BUDGET: memory all partly received frames may take' }),
      used_bytes: Type.Number(),
      strangers_used_bytes: Type.Number(),
      refused: Type.Number({ description: 'frames refused for lack of room, since start' })
    }),
    connections: Type.Object({ linked: Type.Number(), bootstrap: Type.Number(), known: Type.Number(), stranger: Type.Number() }),
    streams_refused: Type.Number({ description: 'inbound streams refused to strangers, since start' }),
    connections_refused: Type.Number({ description: 'stranger connections refused (over a cap, or from a banned address), since start' }),
    strangers_pruned: Type.Number(),
    frames_timed_out: Type.Number({ description: 'frames cut for arriving too slowly (the sender is struck)' }),
    addresses_banned: Type.Number(),
    reservations_refused: Type.Number({ description: 'relay reservations refused to peers that are neither linked nor bootstrap peers' }),
    circuits_refused: Type.Number({ description: 'circuits this relay refused to open for strangers' })
  })]),
  relay: Type.Object({
    serving: Type.Boolean({ description: 'HEARTH_RELAY: relays circuits for linked and bootstrap peers' }),
    reservations: Type.Number({ description: 'reservations held on this relay' }),
    reserved_on: Type.Array(Type.String(), { description: 'relays this node listens through (HEARTH_RELAY_RESERVE)' })
  }),
  reachability: Type.Union([Type.Null(), Type.Object({
    reachability: Type.Union([Type.Literal('public'), Type.Literal('private'), Type.Literal('unknown')], { description: 'public: peers can dial this node; private: behind a router that lets nothing in unasked; unknown: not found out yet' }),
    reason: Type.String({ description: 'the evidence for it' }),
    observed_ips: Type.Array(Type.String(), { description: 'public IPs peers on public addresses saw this node come from, newest first' }),
    verified_addresses: Type.Array(Type.String(), { description: 'own addresses a peer dialled back and reached (AutoNAT)' })
  })]),
  hole_punch: Type.Object({
    enabled: Type.Boolean({ description: 'HEARTH_HOLE_PUNCH' }),
    attempts: Type.Number({ description: 'simultaneous dials tried, since start' }),
    successes: Type.Number({ description: 'relayed connections that became direct, since start' }),
    failures: Type.Record(Type.String(), Type.Number(), { description: 'relayed connections that stayed relayed after every try, by the last try\'s reason (timeout, dial_failed, no_public_address, …)' }),
    last: Type.Union([Type.Null(), Type.Object({
      peer: Type.String(),
      at: Type.String({ format: 'date-time' }),
      result: Type.Union([Type.Literal('direct'), Type.Literal('failed')]),
      reason: Type.Optional(Type.String()),
      ms: Type.Number({ description: 'from the first try to the result' })
    })])
  })
}, { additionalProperties: true })

const ConnectBody = Type.Object({
  addr: Type.String({ minLength: 1, maxLength: 1024, description: 'multiaddr, with or without /p2p/<peer id>' })
}, { additionalProperties: false })

export const p2pRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  app.get('/p2p/status', {
    schema: { tags: ['p2p'], summary: 'This node\'s PeerId, addresses, connected peers and bootstrap state', response: { 200: P2PStatus } }
  }, async () => node.p2pStatus())

  app.get('/p2p/peers', {
    schema: { tags: ['p2p'], summary: 'Connected peers', response: { 200: Type.Object({ peers: Type.Array(Peer) }) } }
  }, async () => ({ peers: node.p2pStatus().peers }))

  app.post('/p2p/connect', {
    schema: {
      tags: ['p2p'],
      summary: 'Dial a peer',
      security: [{ bearer: [] }],
      body: ConnectBody,
      response: { 200: Type.Object({ peer_id: Type.String() }), ...errorResponses(400, 401, 409, 502) }
    }
  }, async (req) => await node.connect(req.body.addr))

  app.delete('/p2p/peers/:peerId', {
    schema: {
      tags: ['p2p'],
      summary: 'Close every connection to a peer',
      security: [{ bearer: [] }],
      params: Type.Object({ peerId: Type.String({ minLength: 1, maxLength: 128 }) }),
      response: { 204: Type.Null(), ...errorResponses(400, 401, 404, 409) }
    }
  }, async (req, reply) => {
    await node.disconnect(req.params.peerId)
    return await reply.status(204).send(null)
  })
}
