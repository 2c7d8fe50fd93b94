import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { errorResponses } from '../schemas.js'
import { requireAuthorized } from '../security.js'
import { applyMergePatch, validatePatch } from '../../docs/merge-patch.js'
import { API_SCHEMA_VERSION } from '../../constants.js'
import { AclUpdate, DocIdParam, DocInfoView, HeadsView, docInfoView, etagMatches, headsEtag, heldDoc, readableDoc } from './doc-views.js'

/** a signed change bundle: `encodeMessage({ type: 'changes', … })` of `@hearth/sync` */
export const SIGNED_CHANGES_TYPE = 'application/vnd.hearth.changes'
/** raw Automerge changes (or a saved document), signed by the daemon for the token's agent */
export const AUTOMERGE_TYPE = 'application/octet-stream'
const CHANGES_BODY_LIMIT = 8 * 1024 * 1024 + 64 * 1024

const CreateQuery = Type.Object({
  writers: Type.Optional(Type.String({ maxLength: 64 * 1024, description: 'comma-separated agent ids who may write' })),
  readers: Type.Optional(Type.String({ maxLength: 64 * 1024, description: 'comma-separated agent ids who may read' })),
  public: Type.Optional(Type.Boolean({ description: 'anyone may read it' }))
}, { additionalProperties: false })

const agentList = (s: string | undefined): string[] | undefined =>
  s == null ? undefined : s.split(',').map(x => x.trim()).filter(x => x.length > 0)

/**
 * Documents over HTTP, for doorways and scripts: create from JSON, read the
 * Automerge binary, apply signed (or custodial) changes, patch with JSON
 * Merge Patch, change the ACL. Writes act for this node's agent (the token's).
 */
export const docRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  app.addContentTypeParser([SIGNED_CHANGES_TYPE, AUTOMERGE_TYPE], { parseAs: 'buffer', bodyLimit: CHANGES_BODY_LIMIT }, (_req, body, done) => { done(null, body) })
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, (req, body, done) => {
    try {
      done(null, JSON.parse(body as string))
    } catch {
      done(new HttpError('ERR_INVALID_JSON', 'the body is not valid JSON'), undefined)
    }
  })

  app.post('/docs', {
    schema: {
      tags: ['documents'],
      summary: 'Create a document from JSON content, owned by this node\'s agent',
      security: [{ bearer: [] }],
      querystring: CreateQuery,
      body: Type.Record(Type.String(), Type.Unknown(), { description: 'the initial content: a JSON object' }),
      response: { 201: DocInfoView, ...errorResponses(400, 401, 409, 413) }
    }
  }, async (req, reply) => {
    const docs = await node.docs.open()
    const owner = node.docs.requireAgent()
    const info = docs.store.create({
      owner,
      content: req.body,
      writers: agentList(req.query.writers),
      readers: agentList(req.query.readers),
      public: req.query.public
    })
    return await reply.code(201).header('Location', `/docs/${info.id}`).send(docInfoView(info))
  })

  app.get('/docs', {
    schema: {
      tags: ['documents'],
      summary: 'List the documents stored here, in id order (token)',
      security: [{ bearer: [] }],
      querystring: Type.Object({
        after: Type.Optional(Type.String({ maxLength: 128 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 }))
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ schema_version: Type.String(), documents: Type.Array(DocInfoView), next: Type.Union([Type.String(), Type.Null()]) }), ...errorResponses(400, 401) }
    }
  }, async req => {
    requireAuthorized(req, 'listing documents')
    const docs = await node.docs.open()
    const after = req.query.after != null ? docs.lib.parseDocumentId(req.query.after).id : undefined
    const limit = req.query.limit ?? 100
    const ids = docs.store.list({ after, limit })
    return { schema_version: API_SCHEMA_VERSION, documents: ids.map(id => docInfoView(docs.store.info(id))), next: ids.length === limit ? ids[ids.length - 1] : null }
  })

  app.get('/docs/:id', {
    schema: {
      tags: ['documents'],
      summary: 'The document as Automerge binary (Automerge.load reads it); a document this node lacks is fetched from peers first',
      params: DocIdParam,
      produces: ['application/octet-stream'],
      response: { 200: Type.Unsafe<Buffer>({ type: 'string', format: 'binary' }), 304: Type.Null(), ...errorResponses(400, 401, 404, 504) }
    }
  }, async (req, reply) => {
    const { docs, id, acl } = await readableDoc(node, req, req.params.id)
    const etag = headsEtag(docs.store.heads(id))
    reply.headers({ ETag: etag, 'Cache-Control': acl.public ? 'no-cache' : 'private, no-cache', 'Content-Type': 'application/octet-stream' })
    if (etagMatches(req.headers['if-none-match'], etag)) return await reply.code(304).send(null)
    return await reply.send(Buffer.from(docs.store.save(id)))
  })

  app.get('/docs/:id/info', {
    schema: {
      tags: ['documents'],
      summary: 'A document\'s metadata: owner, ACL, heads, schema version',
      params: DocIdParam,
      response: { 200: DocInfoView, ...errorResponses(400, 401, 404, 504) }
    }
  }, async req => {
    const { docs, id } = await readableDoc(node, req, req.params.id)
    return docInfoView(docs.store.info(id))
  })

  app.post('/docs/:id/changes', {
    schema: {
      tags: ['documents'],
      summary: `Apply changes: a signed bundle (${SIGNED_CHANGES_TYPE}), or raw Automerge changes (${AUTOMERGE_TYPE}) that this node signs for its agent. All are checked before any is applied.`,
      security: [{ bearer: [] }],
      params: DocIdParam,
      consumes: [SIGNED_CHANGES_TYPE, AUTOMERGE_TYPE],
      response: { 200: HeadsView, ...errorResponses(400, 401, 403, 404, 413, 415) }
    }
  }, async req => {
    const { docs, id } = await heldDoc(node, req.params.id)
    const body = req.body as Buffer
    if (!Buffer.isBuffer(body) || body.length === 0) throw new HttpError('ERR_BAD_REQUEST', 'the body holds no changes')
    const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type === SIGNED_CHANGES_TYPE) {
      const msg = docs.lib.decodeMessage(new Uint8Array(body.buffer, body.byteOffset, body.length), CHANGES_BODY_LIMIT)
      if (msg.type !== 'changes') throw new docs.lib.MalformedMessageError('the body is not a change bundle')
      if (msg.doc !== id) throw new docs.lib.MalformedMessageError('the bundle names another document')
      const r = docs.store.applyChanges(id, msg.changes, { signatures: msg.signatures, origin: 'http' })
      return { schema_version: API_SCHEMA_VERSION, id, heads: r.heads, accepted: r.accepted }
    }
    const r = docs.store.applyChanges(id, [new Uint8Array(body.buffer, body.byteOffset, body.length)], { custodialFor: node.docs.requireAgent(), origin: 'http' })
    return { schema_version: API_SCHEMA_VERSION, id, heads: r.heads, accepted: r.accepted }
  })

  app.patch('/docs/:id', {
    schema: {
      tags: ['documents'],
      summary: 'Change a document with a JSON Merge Patch (RFC 7396): objects merge, null deletes, other values replace',
      security: [{ bearer: [] }],
      params: DocIdParam,
      consumes: ['application/merge-patch+json', 'application/json'],
      body: Type.Record(Type.String(), Type.Unknown()),
      response: { 200: HeadsView, ...errorResponses(400, 401, 403, 404, 413) }
    }
  }, async req => {
    const { docs, id } = await heldDoc(node, req.params.id)
    const patch: unknown = req.body
    validatePatch(patch)
    const agent = node.docs.requireAgent()
    const acl = docs.store.acl(id)
    if (acl.owner !== agent && !acl.writers.includes(agent)) throw new docs.lib.AccessDeniedError(`agent ${agent} may not write document ${id}`)
    const r = docs.store.change(id, d => { applyMergePatch(d, patch) }, { message: 'merge patch over HTTP' })
    return { schema_version: API_SCHEMA_VERSION, id, heads: r.heads, hash: r.hash }
  })

  app.put('/docs/:id/acl', {
    schema: {
      tags: ['documents'],
      summary: 'Replace the writers, readers or public flag of a document this node\'s agent owns',
      security: [{ bearer: [] }],
      params: DocIdParam,
      body: AclUpdate,
      response: { 200: DocInfoView, ...errorResponses(400, 401, 403, 404) }
    }
  }, async req => {
    const { docs, id } = await heldDoc(node, req.params.id)
    return docInfoView(docs.store.updateAcl(id, req.body))
  })
}
