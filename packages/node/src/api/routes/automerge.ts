import websocket from '@fastify/websocket'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { TooManyStreamsError } from '../../errors.js'
import { MAX_SOCKET_MESSAGE, RepoSocket } from '../../docs/repo-socket.js'
import type { RepoSocketHub } from '../../docs/repo-socket.js'

/** automerge-repo clients connected at once */
export const MAX_REPO_SOCKETS = 256
/** of which one token may hold: a leaked or runaway client cannot take every slot */
export const MAX_REPO_SOCKETS_PER_TOKEN = 128

/**
 * `/automerge`: a WebSocket that speaks automerge-repo's network protocol, so
 * a stock Repo with `WebSocketClientAdapter('ws://host:7878/automerge?token=…')`
 * syncs documents with this daemon. Browsers cannot put headers on a
 * WebSocket, so the token comes in the URL (or the Authorization header).
 */
/**
 * The OpenAPI entry for `/automerge`: @fastify/websocket hides WebSocket
 * routes from the generated document, so it is added to it by hand.
 */
export const AUTOMERGE_OPENAPI = {
  get: {
    tags: ['documents'],
    summary: 'WebSocket for automerge-repo clients (network protocol v1)',
    description: `Upgrade to a WebSocket that speaks automerge-repo's network protocol v1 (CBOR messages: join, peer, sync, request, doc-unavailable, ephemeral), so a stock \`Repo\` with \`WebSocketClientAdapter('ws://127.0.0.1:7878/automerge?token=<token>')\` syncs documents with this daemon. A read token syncs read-only. At most ${MAX_REPO_SOCKETS} clients at once, ${MAX_REPO_SOCKETS_PER_TOKEN} per token; a message is at most ${MAX_SOCKET_MESSAGE} bytes.`,
    security: [{ bearer: [] }],
    parameters: [{ name: 'token', in: 'query', required: false, schema: { type: 'string', maxLength: 1024 }, description: 'the API token (browsers cannot set headers on a WebSocket); or the Authorization header' }],
    responses: {
      101: { description: 'Switching Protocols: the socket is open' },
      400: { description: 'ERR_BAD_REQUEST: not a WebSocket upgrade' },
      401: { description: 'ERR_UNAUTHORIZED: no valid token' },
      409: { description: 'ERR_NO_AGENT: this device acts for no agent' },
      429: { description: 'ERR_TOO_MANY_STREAMS: every client slot (or this token\'s share) is taken' }
    }
  }
}

export const automergeRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  await app.register(websocket, { options: { maxPayload: MAX_SOCKET_MESSAGE, perMessageDeflate: false } })
  const sockets = new Set<RepoSocket>()
  const perToken = new Map<string, number>()
  app.addHook('preClose', async () => { for (const s of [...sockets]) s.close() })

  app.get('/automerge', {
    websocket: true,
    schema: {
      tags: ['documents'],
      summary: 'WebSocket for automerge-repo clients (network protocol v1); token in ?token=',
      querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false })
    },
    preHandler: async req => {
      // the token (header or ?token=) was checked on the request: a read token syncs read-only
      if (!req.authorized) {
        throw new HttpError('ERR_UNAUTHORIZED', 'the automerge-repo socket needs a token: ?token=<token> (a read token syncs read-only)')
      }
      if (sockets.size >= MAX_REPO_SOCKETS) throw new TooManyStreamsError(`at most ${MAX_REPO_SOCKETS} automerge-repo clients may connect`)
      if ((perToken.get(req.tokenId ?? req.ip) ?? 0) >= MAX_REPO_SOCKETS_PER_TOKEN) throw new TooManyStreamsError(`at most ${MAX_REPO_SOCKETS_PER_TOKEN} automerge-repo clients per token`)
      if (!req.ws) throw new HttpError('ERR_BAD_REQUEST', 'this route takes a WebSocket upgrade')
      node.docs.requireAgent()
      await node.docs.open()
    }
  }, async (socket, req) => {
    const docs = node.docs.loaded
    const agent = node.docs.agent()
    if (docs == null || agent == null) { socket.close(1011, 'document store unavailable'); return }
    // clients count once joined: a socket that never says who it is does not
    const count = (): void => { node.wsClients = [...sockets].filter(x => x.clientId != null).length }
    const hub: RepoSocketHub = { serverId: `hearth-${node.peerId.toString()}`, docs, agent, readOnly: req.access === 'read', log: node.logger.forComponent('hearth:automerge-ws'), sockets, onChange: count }
    const key = req.tokenId ?? req.ip
    perToken.set(key, (perToken.get(key) ?? 0) + 1)
    const s = new RepoSocket(socket, hub, () => {
      sockets.delete(s)
      const left = (perToken.get(key) ?? 1) - 1
      if (left > 0) perToken.set(key, left)
      else perToken.delete(key)
      count()
    })
    sockets.add(s)
  })
}
