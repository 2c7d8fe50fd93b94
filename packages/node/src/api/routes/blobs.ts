import { Readable } from 'node:stream'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { estimateDagBytes, parseCid } from '@hearth/blobstore'
import type { BlobHead, Layer, Session } from '@hearth/blobstore'
import { HTTP_LIMITS } from '../index.js'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { parseRange } from '../range.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { BlobInfoView, CidParam, LayerSchema, OwnerSchema, blobInfoView, pinOwner, requireHeldOwner } from './blob-views.js'

/**
 * Blob content is whatever a user uploaded, served from the daemon's own
 * origin: never let a browser sniff it into something else, and run any
 * HTML or SVG in a sandbox with no scripts, no network and no same-origin.
 */
export const BLOB_SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox",
  'Cross-Origin-Resource-Policy': 'cross-origin'
}
const IMMUTABLE = 'public, max-age=31536000, immutable'
/** Bodies up to one leaf are sent as one buffer rather than streamed. */
const SMALL_BODY = 1024 * 1024
const CONTENT_TYPE = /^[a-zA-Z0-9!#$&^_.+-]{1,127}\/[a-zA-Z0-9!#$&^_.+-]{1,127}(\s*;\s*[\x20-\x7e]{0,200})?$/

const UploadQuery = Type.Object({
  layer: Type.Optional(LayerSchema),
  owner: Type.Optional(OwnerSchema)
}, { additionalProperties: false })

const AddResultView = Type.Object({
  cid: Type.String(),
  size: Type.Number(),
  blocks: Type.Number(),
  dag_bytes: Type.Number(),
  layer: LayerSchema
})

function etagMatches (header: string | undefined, etag: string): boolean {
  if (header == null) return false
  return header.split(',').some(t => { const v = t.trim(); return v === '*' || v === etag || v === `W/${etag}` })
}

/** What a response needs to know of a blob before it sends its headers. */
interface BlobMeta { cid: string, size: number, contentType?: string }

/**
 * Sends a blob, or the byte range the request asks for, with the headers a
 * CDN or browser needs to cache it forever. Shared by /blob/:cid and the
 * deserialized form of /ipfs/:cid. A blob this node lacks is read from
 * peers as it downloads (see sendRemote).
 */
export async function sendBlob (services: ApiServices, req: FastifyRequest, reply: FastifyReply, cidText: string): Promise<FastifyReply> {
  const store = services.node.blobs
  // A GET without a Range reads at once: read() looks the blob up and checks
  // it in one go, and its body costs nothing until it is iterated (a 304
  // never does). HEAD and ranged GETs look it up first, then read the range.
  const whole = req.method === 'GET' && req.headers.range == null
  let found: { head: BlobHead, body?: AsyncIterable<Uint8Array> }
  try {
    found = whole ? await store.read(cidText) : { head: await store.head(cidText) }
  } catch (err: any) {
    if (err?.code !== 'ERR_BLOB_NOT_FOUND' || services.node.blockExchange == null) throw err
    return await sendRemote(services, req, reply, cidText)
  }
  const { head } = found
  const meta = { cid: head.cid.toString(), size: head.size, ...(head.contentType != null ? { contentType: head.contentType } : {}) }
  return await respond(req, reply, meta, async (offset, length) =>
    found.body != null && offset === 0 && length === head.size ? found.body : (await store.read(head.cid, { offset, length })).body)
}

/**
 * Headers, conditional and range handling, then the body `read(offset,
 * length)` gives. Small bodies go out as one buffer, so a failure while
 * reading them is still an error status; larger ones stream.
 */
async function respond (req: FastifyRequest, reply: FastifyReply, meta: BlobMeta, read: (offset: number, length: number) => Promise<AsyncIterable<Uint8Array>>, done?: () => void): Promise<FastifyReply> {
  const etag = `"${meta.cid}"`
  reply.headers({
    ...BLOB_SECURITY_HEADERS,
    ETag: etag,
    'Cache-Control': IMMUTABLE,
    'Accept-Ranges': 'bytes',
    'Content-Type': meta.contentType ?? 'application/octet-stream'
  })
  if (etagMatches(req.headers['if-none-match'], etag)) { done?.(); return await reply.code(304).send() }

  const ifRange = req.headers['if-range']
  const range = ifRange != null && ifRange !== etag ? { kind: 'none' as const } : parseRange(req.headers.range, meta.size)
  if (range.kind === 'unsatisfiable') {
    done?.()
    reply.header('Content-Range', `bytes */${meta.size}`)
    throw new HttpError('ERR_RANGE_NOT_SATISFIABLE', `range ${String(req.headers.range).slice(0, 64)} is outside the blob's ${meta.size} bytes`)
  }
  const offset = range.kind === 'range' ? range.offset : 0
  const length = range.kind === 'range' ? range.length : meta.size
  if (range.kind === 'range') reply.code(206).header('Content-Range', `bytes ${offset}-${offset + length - 1}/${meta.size}`)
  reply.header('Content-Length', String(length))
  if (req.method === 'HEAD' || length === 0) { done?.(); return await reply.send() }

  const body = await read(offset, length)
  if (length <= SMALL_BODY) {
    // one write for small answers: a stream costs more than the bytes
    const parts: Uint8Array[] = []
    for await (const part of body) parts.push(part)
    // a raw blob is one part, already a Buffer (a view of what SQLite returned)
    const only = parts.length === 1 ? parts[0] : undefined
    return await reply.send(only instanceof Buffer ? only : Buffer.concat(parts))
  }
  return await reply.send(Readable.from(body, { objectMode: false, highWaterMark: 1 }))
}

/**
 * A blob this node lacks, read from the peers that may give it: the root
 * first (size, and the type a provider serves it with), then the bytes the
 * request asks for, sent as soon as their blocks arrive and verify, in
 * order. A range fetches only the blocks it covers; HEAD only the root. A
 * whole read that fits the cache is kept there as it goes (committed once
 * complete; an aborted or failed read leaves nothing); a larger one is only
 * passed through. HEARTH_FETCH_TIMEOUT_MS bounds silence from peers (504
 * before the headers; a cut connection after), not a healthy transfer.
 */
async function sendRemote (services: ApiServices, req: FastifyRequest, reply: FastifyReply, cidText: string): Promise<FastifyReply> {
  const { node } = services
  const exchange = node.blockExchange!
  const cid = parseCid(cidText)
  const timeout = node.config.fetchTimeoutMs
  const aborted = new AbortController()
  const onClose = (): void => { if (!reply.raw.writableFinished) aborted.abort() }
  reply.raw.once('close', onClose)
  // peers may be silent up to the fetch timeout: the idle-socket cut (HTTP_LIMITS.connectionTimeout) must wait longer
  // (an injected request's socket has no timeout to move)
  const socket = req.raw.socket as { setTimeout?: (ms: number) => unknown } | undefined
  const idleCut = (ms: number): void => { try { if (typeof socket?.setTimeout === 'function') socket.setTimeout(ms) } catch { /* not a net socket */ } }
  idleCut(Math.max(timeout + 5000, HTTP_LIMITS.connectionTimeout))
  const restore = (): void => { reply.raw.off('close', onClose); idleCut(HTTP_LIMITS.connectionTimeout) }
  let opened
  try {
    opened = await exchange.openRead(cid, { idleTimeoutMs: timeout, signal: aborted.signal })
  } catch (err: any) {
    restore()
    if (err?.code === 'ERR_NO_PROVIDERS') throw new HttpError('ERR_BLOB_NOT_FOUND', `${cid.toString()} is not here, and no peer offers it`)
    throw err
  }
  const { reader, size, contentType } = opened
  const meta = { cid: cid.toString(), size, ...(contentType != null ? { contentType } : {}) }
  const whole = req.method === 'GET' && req.headers.range == null
  const release = (): void => { reader.close(); restore() }
  return await respond(req, reply, meta, async (offset, length) => {
    const keep = whole ? await keepSession(services, size) : undefined
    return (async function * () {
      let committed = false
      try {
        yield * reader.read(offset, length, keep)
        if (keep != null && reader.kept) {
          await keep.commit(cid, { layer: 'cache', ...(contentType != null ? { contentType } : {}) })
          committed = true
        }
      } catch (err: any) {
        req.log.debug({ root: cid.toString(), err: err?.code ?? err?.message }, 'read-through ended early')
        throw err
      } finally {
        if (keep != null && !committed) await keep.release().catch(() => {})
        release()
      }
    })()
  }, release)
}

/**
 * A session that keeps a whole read-through in the cache, when it can fit
 * the cache's quota (after evicting least-recently-used blobs); none when it
 * cannot, and the read only passes through.
 */
async function keepSession (services: ApiServices, size: number): Promise<Session | undefined> {
  const session = await services.node.blobs.session({ layer: 'cache' })
  try {
    // the cache's quota and the disk's free space decide; nothing is evicted when it cannot fit
    session.expect(estimateDagBytes(size))
    return session
  } catch {
    await session.release()
    return undefined
  }
}

export const blobRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, services) => {
  const { node } = services

  // Uploads stream straight into the store: this plugin's only body parser
  // hands the raw request over untouched, whatever its type.
  await app.register(async plugin => {
    const upload = plugin.withTypeProvider<TypeBoxTypeProvider>()
    upload.removeAllContentTypeParsers()
    upload.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })

    upload.post('/blob', {
      schema: {
        tags: ['blobs'],
        summary: 'Add a blob: the request body, streamed, of any size and type',
        description: 'The Content-Type is stored and served back. `layer` pins it (default `sovereign`; `cache` leaves it unpinned). Acknowledged only once committed to disk.',
        security: [{ bearer: [] }],
        querystring: UploadQuery,
        response: { 201: AddResultView, ...errorResponses(400, 401, 403, 408, 409, 429, 507) }
      }
    }, async (req, reply) => {
      const rawType = req.headers['content-type']
      if (rawType != null && !CONTENT_TYPE.test(rawType)) throw new HttpError('ERR_VALIDATION', 'Content-Type is not a valid media type')
      const layer: Layer = req.query.layer ?? 'sovereign'
      requireHeldOwner(node, pinOwner(req.query.owner, node.trust.agentId), layer)
      const body = (req.body as Readable | undefined) ?? Readable.from([])
      const aborted = new AbortController()
      const onClose = (): void => { if (!req.raw.complete) aborted.abort() }
      req.raw.once('close', onClose)
      try {
        const result = await node.blobs.add(body, {
          layer,
          owner: pinOwner(req.query.owner, node.trust.agentId),
          contentType: rawType ?? 'application/octet-stream',
          signal: aborted.signal
        })
        const cid = result.cid.toString()
        if (layer !== 'cache') node.blockExchange?.announce(cid)
        return await reply.code(201).header('Location', `/blob/${cid}`).send({ cid, size: result.size, blocks: result.blocks, dag_bytes: result.dagBytes, layer })
      } finally {
        req.raw.off('close', onClose)
      }
    })
  })

  // HEAD is its own route: Fastify's automatic one would send Content-Length: 0
  for (const method of ['GET', 'HEAD'] as const) {
    app.route({
      method,
      url: '/blob/:cid',
      exposeHeadRoute: false,
      schema: {
        tags: ['blobs'],
        summary: 'A blob\'s bytes; a single `Range` gives 206; `If-None-Match` gives 304; HEAD gives the headers',
        params: CidParam,
        response: errorResponses(400, 404, 416),
        ...(method === 'HEAD' ? { hide: true } : {})
      },
      handler: async (req, reply) => await sendBlob(services, req, reply as unknown as FastifyReply, (req.params as { cid: string }).cid)
    })
  }

  app.get('/blob/:cid/info', {
    schema: { tags: ['blobs'], summary: 'Size, blocks, content type, layers and pins of a blob', params: CidParam, response: { 200: BlobInfoView, ...errorResponses(400, 404) } }
  }, async req => blobInfoView(await node.blobs.stat(req.params.cid), API_SCHEMA_VERSION))
}
