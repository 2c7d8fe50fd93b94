import { Readable } from 'node:stream'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { parseCid } from '@hearth/blobstore'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { errorResponses } from '../schemas.js'
import { BLOB_SECURITY_HEADERS, sendBlob } from './blobs.js'

const RAW = 'application/vnd.ipld.raw'
const CAR = 'application/vnd.ipld.car'

/** `?format=` wins over `Accept`, as the trustless gateway spec says. */
function requestedFormat (format: string | undefined, accept: string | undefined): 'raw' | 'car' | undefined {
  if (format != null) {
    if (format === 'raw' || format === 'car') return format
    throw new HttpError('ERR_UNSUPPORTED_FORMAT', `format=${format.slice(0, 32)} is not supported here: use raw or car`)
  }
  const types = (accept ?? '').split(',').map(t => t.split(';')[0].trim().toLowerCase())
  if (types.includes(RAW)) return 'raw'
  if (types.includes(CAR)) return 'car'
  return undefined
}

/**
 * The subset of the IPFS trustless gateway that a verifying client needs:
 * a single block (`format=raw`) or the whole DAG as a CAR (`format=car`),
 * both hash-checkable by the client. Without a format the file's bytes are
 * served as on /blob/:cid.
 */
export const gatewayRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, services) => {
  const { node } = services
  app.get('/ipfs/:cid', {
    schema: {
      tags: ['gateway'],
      summary: 'IPFS trustless gateway: ?format=raw|car or Accept: application/vnd.ipld.raw|car',
      params: Type.Object({ cid: Type.String({ minLength: 1, maxLength: 256 }) }),
      querystring: Type.Object({ format: Type.Optional(Type.String({ maxLength: 32 })) }),
      response: errorResponses(400, 404)
    }
  }, async (req, typedReply) => {
    // bytes and streams, not the JSON the error schemas describe
    const reply = typedReply as unknown as FastifyReply
    const format = requestedFormat(req.query.format, req.headers.accept)
    if (format == null) return await sendBlob(services, req, reply, req.params.cid)
    const cid = parseCid(req.params.cid)
    const etag = `"${cid.toString()}.${format}"`
    reply.headers({
      ...BLOB_SECURITY_HEADERS,
      ETag: etag,
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Ipfs-Roots': cid.toString(),
      Vary: 'Accept'
    })
    if (req.headers['if-none-match'] === etag) return await reply.code(304).send()
    if (format === 'raw') {
      const block = await node.blobs.getBlock(cid)
      return await reply.type(RAW).header('Content-Length', String(block.length)).send(Buffer.from(block.buffer, block.byteOffset, block.byteLength))
    }
    // check before the first byte, so a missing root is a clean 404
    if (!await node.blobs.has(cid)) await node.blobs.stat(cid)
    return await reply.type(`${CAR}; version=1`).send(Readable.from(node.blobs.exportCar(cid)))
  })
}
