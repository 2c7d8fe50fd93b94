import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { DocumentId, HeadsEvent } from '@hearth/sync'
import type { ApiServices } from '../index.js'
import { errorResponses } from '../schemas.js'
import { requireAuthorized } from '../security.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { TooManyStreamsError } from '../../errors.js'
import type { OpenDocuments } from '../../docs/service.js'
import { DocIdParam, etagMatches, headsEtag, readableDoc } from './doc-views.js'

/** open change streams (server-sent events), all routes together */
export const MAX_STREAMS = 256
/** of those, what clients without a token may hold together: the rest is kept for clients with one */
export const MAX_ANONYMOUS_STREAMS = 64
/** what one client (its token, or its address without one) may hold */
export const MAX_STREAMS_PER_CLIENT = 32
const KEEPALIVE_MS = 15_000
/** a client further behind than this many bytes gets only the newest state of each document */
const HIGH_WATER = 256 * 1024

const CacheView = Type.Object({
  schema_version: Type.String(),
  id: Type.String(),
  url: Type.String(),
  heads: Type.Array(Type.String()),
  value: Type.Unknown({ description: 'the document as JSON' })
})

const StreamQuery = Type.Object({
  value: Type.Optional(Type.Boolean({ description: 'send the JSON projection with each new state (per-document stream only)' }))
}, { additionalProperties: false })

/**
 * One server-sent-events client. Events are not queued without bound: while
 * the socket is backed up, each document keeps only its newest state, which
 * is all a cache needs.
 */
class EventStream {
  private readonly waiting = new Map<string, string>()
  private seq = 0
  private closed = false
  private readonly timer: ReturnType<typeof setInterval>

  constructor (private readonly reply: FastifyReply, private readonly onClose: () => void) {
    reply.raw.on('close', () => { this.close() })
    reply.raw.on('drain', () => { this.flush() })
    this.timer = setInterval(() => { if (!this.closed) reply.raw.write(': keep-alive\n\n') }, KEEPALIVE_MS)
    this.timer.unref?.()
  }

  send (key: string, event: string, data: unknown): void {
    if (this.closed) return
    this.waiting.set(key, `id: ${++this.seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    this.flush()
  }

  private flush (): void {
    const raw = this.reply.raw
    for (const [key, text] of this.waiting) {
      if (this.closed || raw.writableLength > HIGH_WATER) return
      this.waiting.delete(key)
      raw.write(text)
    }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.waiting.clear()
    this.reply.raw.end()
    this.onClose()
  }
}

export const docStreamRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  let open = 0
  let anonymous = 0
  const perClient = new Map<string, number>()
  const streams = new Set<EventStream>()
  // before the server closes: an open event stream would otherwise hold a graceful stop until its timeout
  app.addHook('preClose', async () => { for (const s of [...streams]) s.close() })

  const startStream = (req: FastifyRequest, reply: FastifyReply): EventStream => {
    const anon = req.access === 'none'
    const client = req.tokenId ?? req.ip
    if (open >= MAX_STREAMS) throw new TooManyStreamsError(`at most ${MAX_STREAMS} change streams may be open`)
    if (anon && anonymous >= MAX_ANONYMOUS_STREAMS) throw new TooManyStreamsError(`at most ${MAX_ANONYMOUS_STREAMS} change streams may be open without a token; the rest are kept for clients with one`)
    if ((perClient.get(client) ?? 0) >= MAX_STREAMS_PER_CLIENT) throw new TooManyStreamsError(`at most ${MAX_STREAMS_PER_CLIENT} change streams per client`)
    open++
    if (anon) anonymous++
    perClient.set(client, (perClient.get(client) ?? 0) + 1)
    reply.hijack()
    reply.raw.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
      'X-Schema-Version': API_SCHEMA_VERSION
    })
    reply.raw.write(': hearth change stream\n\n')
    const s = new EventStream(reply, () => {
      open--
      if (anon) anonymous--
      const left = (perClient.get(client) ?? 1) - 1
      if (left > 0) perClient.set(client, left)
      else perClient.delete(client)
      streams.delete(s)
    })
    streams.add(s)
    return s
  }

  const state = (docs: OpenDocuments, id: DocumentId, heads: string[], origin: string, withValue: boolean): Record<string, unknown> =>
    withValue ? { id, heads, origin, value: docs.store.view(id).value } : { id, heads, origin }

  app.get('/cache/docs/:id', {
    schema: {
      tags: ['documents'],
      summary: 'The document as JSON, with an ETag from its heads (If-None-Match → 304); fetched from peers when this node lacks it',
      params: DocIdParam,
      response: { 200: CacheView, 304: Type.Null(), ...errorResponses(400, 401, 404, 504) }
    }
  }, async (req, reply) => {
    const { docs, id, acl } = await readableDoc(node, req, req.params.id)
    const view = docs.store.view(id)
    const etag = headsEtag(view.heads)
    reply.headers({ ETag: etag, 'Cache-Control': acl.public ? 'no-cache' : 'private, no-cache' })
    if (etagMatches(req.headers['if-none-match'], etag)) return await reply.code(304).send(null)
    return { schema_version: API_SCHEMA_VERSION, id, url: `${docs.lib.URL_PREFIX}${id}`, heads: view.heads, value: view.value }
  })

  app.get('/stream/docs/:id', {
    schema: {
      tags: ['documents'],
      summary: 'Server-sent events: `heads` with the current heads, then one each time they change (`?value=true` adds the JSON)',
      params: DocIdParam,
      querystring: StreamQuery,
      produces: ['text/event-stream'],
      response: { ...errorResponses(400, 401, 404, 429, 504) }
    }
  }, async (req, reply) => {
    const { docs, id } = await readableDoc(node, req, req.params.id)
    const withValue = req.query.value === true
    const s = startStream(req, reply)
    s.send(id, 'heads', state(docs, id, docs.store.heads(id), 'initial', withValue))
    const off = docs.store.onHeads((ev: HeadsEvent) => {
      if (ev.id !== id) return
      try {
        if (!docs.store.acl(id).public && !req.authorized) { s.close(); return }
        s.send(id, 'heads', state(docs, id, ev.heads, ev.origin, withValue))
      } catch {
        s.close()
      }
    })
    reply.raw.on('close', off)
  })

  app.get('/stream/docs', {
    schema: {
      tags: ['documents'],
      summary: 'Server-sent events for every document: `heads` each time one changes (token)',
      security: [{ bearer: [] }],
      produces: ['text/event-stream'],
      response: { ...errorResponses(401, 429) }
    }
  }, async (req, reply) => {
    requireAuthorized(req, 'the stream of every document')
    const docs = await node.docs.open()
    const s = startStream(req, reply)
    const off = docs.store.onHeads((ev: HeadsEvent) => { s.send(ev.id, 'heads', { id: ev.id, heads: ev.heads, origin: ev.origin }) })
    reply.raw.on('close', off)
  })

  app.get('/db/schema', {
    schema: {
      tags: ['documents'],
      summary: 'The schema versions this daemon reads and writes',
      response: {
        200: Type.Object({
          schema_version: Type.String({ description: 'of this view and every JSON view of the API' }),
          api: Type.Array(Type.String()),
          documents: Type.Array(Type.Number({ description: 'document header schema versions' })),
          sync_wire: Type.Array(Type.Number()),
          automerge_repo: Type.Array(Type.String({ description: 'automerge-repo network protocol versions spoken on /automerge' }))
        })
      }
    }
  }, async () => {
    const docs = await node.docs.open()
    return {
      schema_version: API_SCHEMA_VERSION,
      api: [API_SCHEMA_VERSION],
      documents: [...docs.lib.SUPPORTED_SCHEMA_VERSIONS],
      sync_wire: [docs.lib.WIRE_VERSION],
      automerge_repo: ['1']
    }
  })
}
