import { isKeyId } from '@hearth/trust'
import type { DeviceId } from '@hearth/trust'
import { MAX_ACL_ENTRIES, MAX_HEADER_BYTES, SUPPORTED_SCHEMA_VERSIONS } from './constants.js'
import { parseDocumentId } from './document-id.js'
import type { DocumentId } from './document-id.js'
import { InvalidHeaderError } from './errors.js'
import { headerSigningMessage } from './signing.js'
import type { DocumentAcl, Signer, Verifier } from './index.js'

/**
 * A document's metadata, signed by a device of its owner so a peer that
 * receives a document it has never seen can trust its ACL. `version` grows
 * with each ACL update; a peer keeps the highest valid version.
 */
export interface DocumentHeader {
  schema_version: number
  id: DocumentId
  owner: string
  writers: string[]
  readers: string[]
  public: boolean
  created_at: number
  version: number
}

export interface SignedHeader {
  header: DocumentHeader
  /** canonical JSON bytes of the header, what the signature covers (after the domain tag) */
  bytes: Uint8Array
  device: DeviceId
  signature: Uint8Array
}

const dec = new TextDecoder('utf-8', { fatal: true })
const enc = new TextEncoder()
const KEYS = ['schema_version', 'id', 'owner', 'writers', 'readers', 'public', 'created_at', 'version']

export function encodeHeader (h: DocumentHeader): Uint8Array {
  // fixed key order: the bytes are canonical for a given header
  return enc.encode(JSON.stringify({
    schema_version: h.schema_version,
    id: h.id,
    owner: h.owner,
    writers: h.writers,
    readers: h.readers,
    public: h.public,
    created_at: h.created_at,
    version: h.version
  }))
}

export function signHeader (header: DocumentHeader, signer: Signer): SignedHeader {
  const bytes = encodeHeader(header)
  // what peers would refuse is refused here: an ACL naming things that are not agent ids, too many entries
  parseHeader(bytes)
  return { header, bytes, device: signer.deviceId, signature: signer.sign(headerSigningMessage(bytes)) }
}

const bad = (why: string): never => { throw new InvalidHeaderError(why) }

function agentList (v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length > MAX_ACL_ENTRIES) bad(`${field} must be a list of at most ${MAX_ACL_ENTRIES} agent ids`)
  for (const a of v as unknown[]) if (!isKeyId(a)) bad(`${field} holds something that is not an agent id`)
  return v as string[]
}

/** Parses header bytes strictly: exact keys, canonical encoding, known schema version. */
export function parseHeader (bytes: Uint8Array): DocumentHeader {
  if (bytes.length > MAX_HEADER_BYTES) bad('header too large')
  let raw: any
  try {
    raw = JSON.parse(dec.decode(bytes))
  } catch {
    bad('header is not JSON')
  }
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) bad('header is not an object')
  const keys = Object.keys(raw)
  if (keys.length !== KEYS.length || keys.some((k, i) => k !== KEYS[i])) bad('header fields differ from the schema')
  if (!SUPPORTED_SCHEMA_VERSIONS.includes(raw.schema_version)) bad(`unsupported header schema_version ${String(raw.schema_version)}`)
  let id: DocumentId
  try {
    id = parseDocumentId(raw.id).id
  } catch {
    return bad('header id is not a document id')
  }
  if (id !== raw.id) bad('header id must be the bare id')
  if (!isKeyId(raw.owner)) bad('header owner is not an agent id')
  const header: DocumentHeader = {
    schema_version: raw.schema_version,
    id,
    owner: raw.owner,
    writers: agentList(raw.writers, 'writers'),
    readers: agentList(raw.readers, 'readers'),
    public: raw.public === true ? true : raw.public === false ? false : bad('public must be a boolean'),
    created_at: Number.isSafeInteger(raw.created_at) && raw.created_at >= 0 ? raw.created_at : bad('created_at must be a non-negative integer'),
    version: Number.isSafeInteger(raw.version) && raw.version >= 1 ? raw.version : bad('version must be a positive integer')
  }
  const canonical = encodeHeader(header)
  if (canonical.length !== bytes.length || !canonical.every((b, i) => b === bytes[i])) bad('header is not canonically encoded')
  return header
}

/** Parses and checks a header received from a peer: signed by a device of the owner. */
export function verifySignedHeader (bytes: Uint8Array, device: DeviceId, signature: Uint8Array, verifier: Verifier): SignedHeader {
  const header = parseHeader(bytes)
  if (!verifier.verify(headerSigningMessage(bytes), signature, device)) bad('header signature does not verify')
  if (!verifier.mayWrite(device, { owner: header.owner, writers: [] })) bad('header is not signed by a device of the owner')
  return { header, bytes, device, signature }
}

export function aclOf (h: DocumentHeader): DocumentAcl {
  return { owner: h.owner, writers: h.writers, readers: h.readers, public: h.public }
}
