import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { LAYERS } from '@hearth/blobstore'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { errorResponses } from '../schemas.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { CidParam, OwnerSchema, PinLayerSchema, PinView, pinView } from './blob-views.js'

const LayerUsage = Type.Object({ used_bytes: Type.Number(), quota_bytes: Type.Union([Type.Number(), Type.Null()]), roots: Type.Number() })

export const pinRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  app.post('/pins', {
    schema: {
      tags: ['pins'],
      summary: 'Pin a blob this node holds into a storage layer',
      security: [{ bearer: [] }],
      body: Type.Object({ cid: Type.String({ minLength: 1, maxLength: 256 }), layer: PinLayerSchema, owner: Type.Optional(OwnerSchema) }, { additionalProperties: false }),
      response: { 201: PinView, ...errorResponses(400, 401, 404, 507) }
    }
  }, async (req, reply) => {
    const pin = await node.blobs.pin(req.body.cid, { layer: req.body.layer, owner: req.body.owner })
    return await reply.code(201).send(pinView(pin))
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
          scrub: Type.Object({}, { additionalProperties: true })
        })
      }
    }
  }, async () => {
    const usage = await node.blobs.usage()
    return { schema_version: API_SCHEMA_VERSION, layers: usage.layers, blocks: usage.blocks, scrub: node.blobs.scrubStatus() }
  })
}
