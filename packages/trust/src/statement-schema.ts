import { CID } from 'multiformats/cid'
import {
  MAX_LABEL_KEY_LENGTH, MAX_LABEL_VALUE_LENGTH, MAX_LABELS, MAX_NAME_LENGTH, NONCE_BYTES, SCHEMA_MAJOR, SCHEMA_MINOR
} from './constants.js'
import { MalformedStatementError, UnknownStatementTypeError, UnsupportedSchemaVersionError } from './errors.js'
import { isStatementCid } from './ids.js'
import type { Statement, StatementType } from './index.js'

/**
 * The statement schema: how each statement type maps between its wire form
 * (a dag-cbor map with snake_case keys) and the typed object the API hands
 * out, and the checks every field must pass. Decoding is strict: a missing or
 * wrongly typed field is refused; a field this version does not know is
 * refused too, unless the statement declares a newer minor version (readers
 * ignore fields added by minor versions; the signature still covers them).
 */

type Check = (value: unknown) => boolean

interface FieldSpec {
  wire: string
  ts: string
  check: Check
  optional?: boolean
}

export const STATEMENT_TYPES: readonly StatementType[] = [
  'device-cert', 'device-revocation', 'key-rotation', 'relationship', 'storage-grant', 'revocation'
]
export const RELATIONSHIP_KINDS = ['family', 'friend', 'community'] as const
export const STORAGE_LAYERS = ['sovereign', 'reciprocal', 'invested', 'gift'] as const

/** Types whose effect is permanent: their `expires_at` must be null. */
export const PERMANENT_TYPES: ReadonlySet<StatementType> = new Set(['device-revocation', 'key-rotation', 'revocation'])

const isBytes = (length: number): Check => v => v instanceof Uint8Array && v.length === length
const isKey = isBytes(32)
const isUint: Check = v => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isPositive: Check = v => isUint(v) && (v as number) > 0
const isText = (max: number): Check => v => typeof v === 'string' && v.length > 0 && v.length <= max
const isOneOf = (values: readonly string[]): Check => v => typeof v === 'string' && values.includes(v)

function isPlainObject (v: unknown): v is Record<string, unknown> {
  if (v == null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

const isLabels: Check = v => {
  if (!isPlainObject(v)) return false
  const entries = Object.entries(v)
  return entries.length > 0 && entries.length <= MAX_LABELS &&
    entries.every(([k, val]) => k.length > 0 && k.length <= MAX_LABEL_KEY_LENGTH && isText(MAX_LABEL_VALUE_LENGTH)(val))
}

const isStatementLink: Check = v => {
  const cid = CID.asCID(v)
  return cid != null && isStatementCid(cid)
}

const HEADER: FieldSpec[] = [
  { wire: 'issuer', ts: 'issuer', check: isKey },
  { wire: 'issued_at', ts: 'issuedAt', check: isUint },
  { wire: 'nonce', ts: 'nonce', check: isBytes(NONCE_BYTES) }
]

const PAYLOAD: Record<StatementType, FieldSpec[]> = {
  'device-cert': [
    { wire: 'device', ts: 'device', check: isKey },
    { wire: 'name', ts: 'name', check: isText(MAX_NAME_LENGTH), optional: true },
    { wire: 'labels', ts: 'labels', check: isLabels, optional: true }
  ],
  'device-revocation': [
    { wire: 'device', ts: 'device', check: isKey }
  ],
  'key-rotation': [
    { wire: 'new_key', ts: 'newKey', check: isKey },
    { wire: 'proof', ts: 'proof', check: isBytes(64) }
  ],
  relationship: [
    { wire: 'subject', ts: 'subject', check: isKey },
    { wire: 'kind', ts: 'kind', check: isOneOf(RELATIONSHIP_KINDS) }
  ],
  'storage-grant': [
    { wire: 'grantee', ts: 'grantee', check: isKey },
    { wire: 'layer', ts: 'layer', check: isOneOf(STORAGE_LAYERS) },
    { wire: 'quota_bytes', ts: 'quotaBytes', check: isPositive },
    { wire: 'labels', ts: 'labels', check: isLabels, optional: true }
  ],
  revocation: [
    { wire: 'target', ts: 'target', check: isStatementLink }
  ]
}

const FIXED_WIRE = new Set(['type', 'schema_version', 'expires_at', ...HEADER.map(f => f.wire)])

function malformed (msg: string): never {
  throw new MalformedStatementError(msg)
}

function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** Rules between fields that no single field check can see. */
function checkInvariants (s: Statement): void {
  if (PERMANENT_TYPES.has(s.type)) {
    if (s.expiresAt !== null) malformed(`${s.type} is permanent: expires_at must be null`)
  } else if (s.expiresAt === null || s.expiresAt <= s.issuedAt) {
    malformed(`${s.type} needs an expires_at after issued_at`)
  }
  if (s.type === 'relationship' && bytesEqual(s.subject, s.issuer)) malformed('an agent cannot attest a relationship with itself')
  if (s.type === 'storage-grant' && bytesEqual(s.grantee, s.issuer)) malformed('an agent cannot grant storage to itself')
  if (s.type === 'key-rotation' && bytesEqual(s.newKey, s.issuer)) malformed('a key cannot rotate to itself')
}

/** Validates a decoded wire map and returns the typed statement. */
export function statementFromWire (value: unknown): Statement {
  if (!isPlainObject(value)) malformed('a statement is a map')
  const version = value.schema_version
  if (!Array.isArray(version) || version.length !== 2 || !version.every(isUint)) {
    malformed('schema_version is a [major, minor] pair of integers')
  }
  const [major, minor] = version as [number, number]
  if (major !== SCHEMA_MAJOR) throw new UnsupportedSchemaVersionError(`schema major version ${major} is not supported`)
  if (typeof value.type !== 'string') malformed('type is a string')
  const type = value.type as StatementType
  if (!STATEMENT_TYPES.includes(type)) throw new UnknownStatementTypeError(`unknown statement type ${JSON.stringify(value.type).slice(0, 80)}`)

  const out: Record<string, unknown> = { type, schemaVersion: [major, minor] }
  const expires = value.expires_at
  if (!(expires === null || isUint(expires))) malformed('expires_at is an integer or null')
  out.expiresAt = expires
  const fields = [...HEADER, ...PAYLOAD[type]]
  for (const f of fields) {
    const v = value[f.wire]
    if (v === undefined) {
      if (f.optional === true) continue
      malformed(`missing field ${f.wire}`)
    }
    if (!f.check(v)) malformed(`field ${f.wire} has the wrong type or size`)
    out[f.ts] = v
  }
  if (minor <= SCHEMA_MINOR) {
    const known = new Set([...FIXED_WIRE, ...PAYLOAD[type].map(f => f.wire)])
    for (const key of Object.keys(value)) {
      if (!known.has(key)) malformed(`unknown field ${JSON.stringify(key).slice(0, 80)} in a ${type} v${major}.${minor}`)
    }
  }
  const statement = out as unknown as Statement
  checkInvariants(statement)
  return statement
}

/** The wire map of a typed statement (optional fields left out, never null). */
export function statementToWire (statement: Statement): Record<string, unknown> {
  const s = statement as unknown as Record<string, unknown>
  const out: Record<string, unknown> = {
    type: statement.type,
    schema_version: [...statement.schemaVersion],
    expires_at: statement.expiresAt
  }
  const fields = PAYLOAD[statement.type]
  if (fields == null) throw new UnknownStatementTypeError(`unknown statement type ${String(statement.type)}`)
  for (const f of [...HEADER, ...fields]) {
    if (s[f.ts] !== undefined) out[f.wire] = s[f.ts]
  }
  return out
}
