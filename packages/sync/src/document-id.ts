import { randomBytes } from 'node:crypto'
import bs58check from 'bs58check'
import { InvalidDocumentIdError } from './errors.js'

/**
 * Document ids are the ones automerge-repo uses, so a stock client and a
 * daemon name a document the same way: 16 random bytes, base58check-encoded,
 * and as a URL prefixed with `automerge:`.
 */
export const URL_PREFIX = 'automerge:'
const ID_BYTES = 16
/** 16 bytes + 4 checksum bytes need at most 28 base58 characters */
const MAX_ID_CHARS = 32

export type DocumentId = string & { readonly __documentId: unique symbol }

export interface ParsedDocumentId {
  id: DocumentId
  url: string
  bytes: Uint8Array
}

export function generateDocumentId (): ParsedDocumentId {
  return fromBytes(randomBytes(ID_BYTES))
}

export function fromBytes (bytes: Uint8Array): ParsedDocumentId {
  if (bytes.length !== ID_BYTES) throw new InvalidDocumentIdError(`a document id is ${ID_BYTES} bytes, got ${bytes.length}`)
  const id = bs58check.encode(bytes) as DocumentId
  return { id, url: URL_PREFIX + id, bytes: Uint8Array.from(bytes) }
}

/**
 * Accepts `automerge:<id>` or a bare `<id>` (HTTP routes take both) and
 * checks the checksum and length; anything else is an InvalidDocumentIdError.
 * A `#heads` suffix is not a document id and is refused here.
 */
export function parseDocumentId (input: string): ParsedDocumentId {
  if (typeof input !== 'string') throw new InvalidDocumentIdError('a document id is a string')
  const bare = input.startsWith(URL_PREFIX) ? input.slice(URL_PREFIX.length) : input
  if (bare.length === 0 || bare.length > MAX_ID_CHARS || !/^[1-9A-HJ-NP-Za-km-z]+$/.test(bare)) {
    throw new InvalidDocumentIdError('not a document id: expected automerge:<base58check> or <base58check>')
  }
  let bytes: Uint8Array
  try {
    bytes = bs58check.decode(bare)
  } catch {
    throw new InvalidDocumentIdError('not a document id: bad base58check checksum')
  }
  return fromBytes(bytes)
}

export function isDocumentId (input: unknown): input is DocumentId {
  if (typeof input !== 'string') return false
  try {
    return parseDocumentId(input).id === input
  } catch {
    return false
  }
}
