import { createHash } from 'node:crypto'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { DocumentAcl, DocumentId } from '@hearth/sync'
import type { HearthNode } from '../../node.js'
import type { OpenDocuments } from '../../docs/service.js'
import { DocFetchTimeoutError } from '../../errors.js'
import { requireAuthorized } from '../security.js'
import { API_SCHEMA_VERSION } from '../../constants.js'

export const DocIdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'document id: `automerge:<base58check>` or the bare id' })
})

const AgentList = Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 1024 })

export const AclView = Type.Object({
  owner: Type.String(),
  writers: Type.Array(Type.String()),
  readers: Type.Array(Type.String()),
  public: Type.Boolean()
})

export const AclUpdate = Type.Object({
  writers: Type.Optional(AgentList),
  readers: Type.Optional(AgentList),
  public: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

export const DocInfoView = Type.Object({
  schema_version: Type.String({ description: 'of this view, as every view of the API' }),
  id: Type.String(),
  url: Type.String(),
  owner: Type.String(),
  acl: AclView,
  header_schema_version: Type.Number({ description: 'the schema version of the document\'s signed header' }),
  created_at: Type.String({ format: 'date-time' }),
  header_version: Type.Number({ description: 'grows with each ACL change' }),
  heads: Type.Array(Type.String()),
  pending_changes: Type.Number({ description: 'change rows not yet folded into a snapshot' })
})

export const HeadsView = Type.Object({
  schema_version: Type.String(),
  id: Type.String(),
  heads: Type.Array(Type.String()),
  accepted: Type.Optional(Type.Number({ description: 'changes newly stored' })),
  hash: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'the new change, or null when the patch changed nothing' }))
})

/** A strong validator for a document's state: its heads, order-free, hashed to a fixed length. */
export function headsEtag (heads: readonly string[]): string {
  return `"${createHash('sha256').update([...heads].sort().join('.')).digest('base64url').slice(0, 27)}"`
}

export function etagMatches (header: string | undefined, etag: string): boolean {
  if (header == null) return false
  return header.split(',').some(t => { const v = t.trim(); return v === '*' || v === etag || v === `W/${etag}` })
}

/**
 * Opens the store, parses the id, and returns a document this request may
 * read. A document this node lacks is first asked of the peers it syncs
 * with (404 when none has it, 504 when they do not answer in time). A
 * document that is not public needs the bearer token.
 */
export async function readableDoc (node: HearthNode, req: FastifyRequest, idText: string): Promise<{ docs: OpenDocuments, id: DocumentId, acl: DocumentAcl }> {
  const docs = await node.docs.open()
  const id = docs.lib.parseDocumentId(idText).id
  if (!docs.store.has(id) || docs.store.isEmpty(id)) {
    const sync = node.syncProtocol
    const outcome = sync != null ? await sync.sharing.fetch(docs, id, node.config.fetchTimeoutMs) : 'absent'
    if (outcome === 'timeout') throw new DocFetchTimeoutError(`no peer gave document ${id} within ${node.config.fetchTimeoutMs} ms`)
    if (outcome === 'absent') throw new docs.lib.DocumentNotFoundError(`document ${id} is not stored here, and no connected peer gives it`)
  }
  const acl = docs.store.acl(id)
  if (!acl.public) requireAuthorized(req, 'this document is not public: reading it')
  return { docs, id, acl }
}

/** Opens the store and parses the id of a document this node must already hold (writes). */
export async function heldDoc (node: HearthNode, idText: string): Promise<{ docs: OpenDocuments, id: DocumentId }> {
  const docs = await node.docs.open()
  const id = docs.lib.parseDocumentId(idText).id
  if (!docs.store.has(id)) throw new docs.lib.DocumentNotFoundError(`document ${id} is not stored here`)
  return { docs, id }
}

/** A document's metadata as the API shows it: the view's schema version, times in ISO 8601 */
export function docInfoView<T extends { schema_version: number, created_at: number }> (info: T): Omit<T, 'schema_version' | 'created_at'> & { schema_version: string, header_schema_version: number, created_at: string } {
  const { schema_version: header, created_at: created, ...rest } = info
  return { schema_version: API_SCHEMA_VERSION, ...rest, header_schema_version: header, created_at: new Date(created).toISOString() }
}
