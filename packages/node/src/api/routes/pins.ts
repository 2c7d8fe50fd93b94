import { PassThrough } from 'node:stream'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox, Static } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { LAYERS, parseCid } from '@hearth/blobstore'
import type { Pin, PinLayer, ScrubStatus } from '@hearth/blobstore'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { CidParam, OwnerSchema, PinLayerSchema, PinView, pinOwner, pinView, requireHeldOwner } from './blob-views.js'

const LayerUsage = Type.Object({ used_bytes: Type.Number(), quota_bytes: Type.Union([Type.Number(), Type.Null()]), roots: Type.Number() })
const NDJSON = 'application/x-ndjson'
const DiskView = Type.Object({
  free_bytes: Type.Union([Type.Number(), Type.Null()], { description: 'free for this user on the data folder\'s file system' }),
  full: Type.Boolean({ description: 'writes answer 507 ERR_DISK_FULL until space is freed' }),
  full_since: Type.Union([Type.String(), Type.Null()]),
  reserve_bytes: Type.Number({ description: 'HEARTH_DISK_RESERVE: kept back, released while the disk is full so that unpin and gc work' }),
  reserve_held: Type.Boolean()
})

export const pinRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  /**
   * Pins a root, fetching it first from peers that may give it when this
   * node lacks it (verified per block, resumed where an earlier attempt
   * stopped, bounded by the layer's quota). `onProgress` sees the file
   * bytes received and, once the root arrived, the size.
   */
  const pinOrFetch = async (cidText: string, layer: PinLayer, owner: string | undefined, fetch: boolean, signal: AbortSignal, onProgress?: (bytes: number, total: number | undefined) => void): Promise<Pin> => {
    const cid = parseCid(cidText)
    if (await node.blobs.has(cid)) return await node.blobs.pin(cid, { layer, owner })
    const exchange = node.blockExchange
    if (!fetch || exchange == null) throw new HttpError('ERR_BLOB_NOT_FOUND', `${cid.toString()} is not here${fetch ? ' and p2p is off' : ' (and fetch=false)'}`)
    try {
      await exchange.fetch(cid, { layer, owner, signal, idleTimeoutMs: node.config.fetchTimeoutMs, onProgress })
    } catch (err: any) {
      if (err?.code === 'ERR_NO_PROVIDERS') throw new HttpError('ERR_BLOB_NOT_FOUND', `${cid.toString()} is not here, and no peer offers it`)
      throw err
    }
    const pins = await node.blobs.pins({ cid, layer })
    return pins.find(p => (p.owner ?? null) === (owner ?? null)) ?? pins[0]
  }

  app.post('/pins', {
    schema: {
      tags: ['pins'],
      summary: 'Pin a blob into a storage layer, fetching it from peers first when this node lacks it',
      description: 'A root this node lacks is fetched from peers that may give it (verified per block, resumed where an interrupted attempt stopped), within the layer\'s quota (507 before the download when its root declares more than fits), then pinned; `fetch: false` answers 404 instead. The fetch fails with 504 after `HEARTH_FETCH_TIMEOUT_MS` without a block, however long a healthy transfer takes. With `Accept: application/x-ndjson` the answer streams: `{"type":"progress","bytes","total"}` lines, then `{"type":"pinned","pin":{…}}` or `{"type":"error","error","message"}`.',
      security: [{ bearer: [] }],
      body: Type.Object({
        cid: Type.String({ minLength: 1, maxLength: 256 }),
        layer: PinLayerSchema,
        owner: Type.Optional(OwnerSchema),
        fetch: Type.Optional(Type.Boolean({ default: true, description: 'fetch the root from peers when this node lacks it' }))
      }, { additionalProperties: false }),
      response: { 201: PinView, 200: Type.String({ description: 'with Accept: application/x-ndjson, for a root being fetched: one JSON object per line' }), ...errorResponses(400, 401, 403, 404, 409, 429, 504, 507) }
    }
  }, async (req, reply) => {
    const { cid, layer } = req.body
    const owner = pinOwner(req.body.owner, node.trust.agentId)
    requireHeldOwner(node, owner, layer)
    const fetch = req.body.fetch !== false
    const aborted = new AbortController()
    const onClose = (): void => { if (!reply.raw.writableFinished) aborted.abort() }
    reply.raw.once('close', onClose)
    parseCid(cid)
    const streaming = String(req.headers.accept ?? '').includes(NDJSON) && !await node.blobs.has(cid)
    if (!streaming) {
      try {
        return await reply.code(201).send(pinView(await pinOrFetch(cid, layer, owner, fetch, aborted.signal)))
      } finally {
        reply.raw.off('close', onClose)
      }
    }
    const out = new PassThrough()
    const line = (v: unknown): void => { out.write(JSON.stringify(v) + '\n') }
    let last = 0
    void pinOrFetch(cid, layer, owner, fetch, aborted.signal, (bytes, total) => {
      const now = Date.now()
      if (now - last < 100 && bytes !== total) return
      last = now
      line({ type: 'progress', bytes, total: total ?? null })
    }).then(pin => { line({ type: 'pinned', pin: pinView(pin) }) }, (err: any) => {
      const code = typeof err?.code === 'string' && err.code.startsWith('ERR_') ? err.code : 'ERR_INTERNAL'
      line({ type: 'error', error: code, message: code === 'ERR_INTERNAL' ? 'internal error' : String(err?.message ?? err) })
      if (code === 'ERR_INTERNAL') req.log.error({ err }, 'pin fetch failed')
    }).finally(() => { reply.raw.off('close', onClose); out.end() })
    // the progress stream sits outside the 201 schema: an untyped reply sends it as it is
    return await (reply as unknown as FastifyReply).code(200).type(NDJSON).header('cache-control', 'no-store').send(out)
  })

  app.get('/pins', {
    schema: {
      tags: ['pins'],
      summary: 'List pins, filtered by cid, layer or owner',
      querystring: Type.Object({ cid: Type.Optional(Type.String({ maxLength: 256 })), layer: Type.Optional(PinLayerSchema), owner: Type.Optional(OwnerSchema) }, { additionalProperties: false }),
      response: { 200: Type.Object({ pins: Type.Array(PinView) }), ...errorResponses(400) }
    }
  }, async req => ({ pins: (await node.blobs.pins(req.query)).map(pinView) }))

  app.delete('/pins/:cid', {
    schema: {
      tags: ['pins'],
      summary: 'Unpin a blob (from one layer, or all; one owner, or any). Unpinned blobs join the LRU cache.',
      security: [{ bearer: [] }],
      params: CidParam,
      querystring: Type.Object({ layer: Type.Optional(PinLayerSchema), owner: Type.Optional(OwnerSchema) }, { additionalProperties: false }),
      response: { 200: Type.Object({ removed: Type.Number() }), ...errorResponses(400, 401, 404) }
    }
  }, async req => {
    const removed = await node.blobs.unpin(req.params.cid, { layer: req.query.layer, owner: req.query.owner })
    if (removed === 0) throw new HttpError('ERR_PIN_NOT_FOUND', 'no pin matches')
    return { removed }
  })

  app.get('/storage', {
    schema: {
      tags: ['pins'],
      summary: 'Use and quota per storage layer, blocks, and the integrity scrub',
      response: {
        200: Type.Object({
          schema_version: Type.String(),
          layers: Type.Object(Object.fromEntries(LAYERS.map(l => [l, LayerUsage]))),
          blocks: Type.Object({ count: Type.Number(), bytes: Type.Number(), unreferenced: Type.Number(), quarantined: Type.Number() }),
          scrub: Type.Object({}, { additionalProperties: true }),
          disk: DiskView
        })
      }
    }
  }, async () => {
    const usage = await node.blobs.usage()
    return { schema_version: API_SCHEMA_VERSION, layers: usage.layers, blocks: usage.blocks, scrub: scrubView(node.blobs.scrubStatus()), disk: diskView() }
  })

  app.post('/storage/gc', {
    schema: {
      tags: ['pins'],
      summary: 'Collect now: evict the cache to its quota and to the free space the disk has, delete unreferenced blocks, hand freed pages back to the file system. Accepted while the disk is full.',
      security: [{ bearer: [] }],
      response: {
        200: Type.Object({
          blocks_deleted: Type.Number(),
          bytes_freed: Type.Number({ description: 'bytes of blocks deleted' }),
          bytes_released: Type.Number({ description: 'bytes the database file gave back to the file system' }),
          roots_evicted: Type.Number({ description: 'cached blobs evicted' }),
          duration_ms: Type.Number(),
          disk: DiskView
        }),
        ...errorResponses(401)
      }
    }
  }, async () => {
    const r = await node.blobs.gc()
    node.disk?.check()
    return { blocks_deleted: r.blocksDeleted, bytes_freed: r.bytesFreed, bytes_released: r.bytesReleased, roots_evicted: r.rootsEvicted, duration_ms: r.durationMs, disk: diskView() }
  })

  function diskView (): Static<typeof DiskView> {
    return node.disk?.status() ?? { free_bytes: null, full: false, full_since: null, reserve_bytes: 0, reserve_held: false }
  }
}

/** The integrity scrub's state in the API's shape (snake_case, ISO times) */
function scrubView (s: ScrubStatus): Record<string, unknown> {
  const at = (ms: number | undefined): string | null => ms == null ? null : new Date(ms).toISOString()
  return {
    running: s.running,
    passes: s.passes,
    blocks_checked: s.blocksChecked,
    bytes_checked: s.bytesChecked,
    corrupt: s.corrupt,
    quarantined: s.quarantined,
    bytes_per_second: s.bytesPerSecond,
    last_pass_started_at: at(s.lastPassStartedAt),
    last_pass_completed_at: at(s.lastPassCompletedAt)
  }
}
