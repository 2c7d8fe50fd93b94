/**
 * @packageDocumentation
 *
 * `@hearth/sync` keeps Automerge documents and syncs them with peers. This
 * first part holds document identity: ids and URLs compatible with
 * automerge-repo (`automerge:<base58check>`), accepted with or without the
 * prefix. The SQLite document store, signed changes and the sync engine
 * build on it.
 */
export { generateDocumentId, parseDocumentId, isDocumentId, fromBytes, URL_PREFIX } from './document-id.js'
export type { DocumentId, ParsedDocumentId } from './document-id.js'
export { InvalidDocumentIdError } from './errors.js'
