import { Type } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ApiServices } from '../index.js'
import { HttpError } from '../error-handler.js'
import { errorResponses } from '../schemas.js'
import { SCOPES } from '../tokens.js'
import type { Scope } from '../tokens.js'

const Scope = Type.Unsafe<Scope>({ type: 'string', enum: [...SCOPES], description: 'read: every GET; write: also blobs, pins and documents; admin: also trust, tokens, peers and gc' })

const TokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scope: Scope,
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'to the minute' })
})

/** Scoped API tokens: one per doorway or app, each revocable on its own (admin) */
export const tokenRoutes: FastifyPluginAsyncTypebox<ApiServices> = async (app, { node }) => {
  app.get('/tokens', {
    schema: {
      tags: ['tokens'],
      summary: 'The scoped tokens (never their secrets)',
      security: [{ bearer: [] }],
      response: { 200: Type.Object({ tokens: Type.Array(TokenView) }), ...errorResponses(401, 403) }
    }
  }, async () => ({ tokens: node.tokens.list() }))

  app.post('/tokens', {
    schema: {
      tags: ['tokens'],
      summary: 'Make a token; its text is in this answer only (node.db keeps its SHA-256)',
      security: [{ bearer: [] }],
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x20-\\x7e]+$', description: 'who gets it, e.g. doorway or photo-app' }),
        scope: Scope
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ token: Type.String(), ...TokenView.properties }), ...errorResponses(400, 401, 403, 429) }
    }
  }, async (req, reply) => {
    const { token, view } = node.tokens.create(req.body.name, req.body.scope)
    return await reply.code(201).send({ token, ...view })
  })

  app.delete('/tokens/:id', {
    schema: {
      tags: ['tokens'],
      summary: 'Revoke a token: it stops working at once',
      security: [{ bearer: [] }],
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
      response: { 204: Type.Null(), ...errorResponses(401, 403, 404) }
    }
  }, async (req, reply) => {
    if (!node.tokens.revoke(req.params.id)) throw new HttpError('ERR_TOKEN_NOT_FOUND', 'no token has that id')
    return await reply.code(204).send(null)
  })
}
