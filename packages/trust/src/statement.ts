import * as dagCbor from '@ipld/dag-cbor'
import { DEFAULT_CLOCK_SKEW_MS, DOMAIN_PREFIX, MAX_STATEMENT_BYTES, NONCE_BYTES, ROTATION_PROOF_DOMAIN, SCHEMA_MAJOR, SCHEMA_MINOR } from './constants.js'
import { ed, signEd25519, verifyEd25519 } from './ed25519.js'
import {
  InvalidSignatureError, MalformedStatementError, NonCanonicalEncodingError, StatementExpiredError,
  StatementNotYetValidError, StatementTooLargeError, WrongDomainError
} from './errors.js'
import { statementCid } from './ids.js'
import { STATEMENT_TYPES, statementFromWire, statementToWire } from './statement-schema.js'
import type { KeyPair } from './keys.js'
import type { SignedStatement, SignOptions, Statement, StatementBody, StatementType, VerifyOptions } from './index.js'

/**
 * The signed statement envelope.
 *
 * Wire form: the canonical dag-cbor encoding of `{ signature, statement }`
 * where `statement` is the statement map and `signature` is the issuer's
 * Ed25519 signature over `domainTag(type) || dagCbor(statement)`. The
 * statement id is the CID (dag-cbor, sha2-256) of `dagCbor(statement)`, so it
 * does not depend on the signature bytes.
 */

const encoder = new TextEncoder()
const DOMAIN_TAGS = new Map<StatementType, Uint8Array>(STATEMENT_TYPES.map(t => [t, encoder.encode(`${DOMAIN_PREFIX}${t}\0`)]))
const ROTATION_PROOF_TAG = encoder.encode(ROTATION_PROOF_DOMAIN)

/** `hearth/v1/<type>\0` as bytes. */
export function domainTag (type: StatementType): Uint8Array {
  const tag = DOMAIN_TAGS.get(type)
  if (tag == null) throw new MalformedStatementError(`no domain for statement type ${String(type)}`)
  return tag
}

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

// dag-cbor sorts map keys by length, then bytes: "signature" < "statement".
const ENVELOPE_HEAD = Uint8Array.from([0xa2, 0x69, ...encoder.encode('signature'), 0x58, 0x40])
const STATEMENT_KEY = Uint8Array.from([0x69, ...encoder.encode('statement')])

/** The canonical dag-cbor of `{ signature, statement }` given the statement's canonical bytes. */
function envelopeBytes (signature: Uint8Array, statementBytes: Uint8Array): Uint8Array {
  return concat(ENVELOPE_HEAD, signature, STATEMENT_KEY, statementBytes)
}

/** The message a key rotation's new key signs to prove it consents to the rotation. */
export function rotationProofMessage (oldKey: Uint8Array, newKey: Uint8Array): Uint8Array {
  return concat(ROTATION_PROOF_TAG, oldKey, newKey)
}

// dag-cbor's decoder already refuses some non-canonical forms (over-long
// integers, indefinite lengths, repeated map keys); those are encoding
// errors of a well-formed value, not garbage, so they get the same code as a
// re-encoding mismatch. If cborg rewords its messages this degrades to
// ERR_MALFORMED_STATEMENT, which is still a rejection.
function decodeError (err: unknown): Error {
  const msg = err instanceof Error ? err.message : ''
  if (/strict decode|indefinite length|repeat map key/.test(msg)) return new NonCanonicalEncodingError('not canonical dag-cbor')
  return new MalformedStatementError('not dag-cbor')
}

/** Signs a statement map already in wire form. Exposed for tests that need statements the typed API refuses to build. */
export function signWire (secretKey: Uint8Array, type: StatementType, wire: Record<string, unknown>): Uint8Array {
  const statementBytes = dagCbor.encode(wire)
  const signature = signEd25519(concat(domainTag(type), statementBytes), secretKey)
  return envelopeBytes(signature, statementBytes)
}

/**
 * Builds, validates and signs a statement issued by `key`. `issuedAt`
 * defaults to `Date.now()`; pass the daemon's clock for testable code.
 * Permanent types (revocations, rotations) take no `expiresAt`.
 */
export function signStatement<B extends StatementBody> (key: KeyPair, body: B, options: SignOptions = {}): SignedStatement<B> {
  const issuedAt = options.issuedAt ?? Date.now()
  const statement = {
    ...body,
    schemaVersion: [SCHEMA_MAJOR, SCHEMA_MINOR] as const,
    issuer: Uint8Array.from(key.publicKey),
    issuedAt,
    expiresAt: options.expiresAt ?? null,
    nonce: options.nonce ?? ed.utils.randomSecretKey().slice(0, NONCE_BYTES)
  } as unknown as Statement
  const wire = statementToWire(statement)
  // The same checks as the decoder, so we never sign what a peer would refuse.
  const checked = statementFromWire(wire)
  const statementBytes = dagCbor.encode(wire)
  const signature = signEd25519(concat(domainTag(checked.type), statementBytes), key.secretKey)
  const bytes = envelopeBytes(signature, statementBytes)
  if (bytes.length > MAX_STATEMENT_BYTES) throw new StatementTooLargeError(`statement is ${bytes.length} bytes, the cap is ${MAX_STATEMENT_BYTES}`)
  const cid = statementCid(statementBytes)
  return { id: cid.toString(), cid, statement: checked as unknown as Statement<B>, signature, bytes }
}

/**
 * Decodes and verifies a signed statement on its own: size, canonical
 * encoding, shape, schema version, type, validity window and signature. It
 * knows nothing of rotations or revocations; {@link TrustGraph.add} applies
 * those on top. Checks run cheapest first, so garbage costs no curve work.
 */
export function verifyStatement (bytes: Uint8Array, options: VerifyOptions = {}): SignedStatement {
  const maxBytes = options.maxBytes ?? MAX_STATEMENT_BYTES
  if (!(bytes instanceof Uint8Array)) throw new MalformedStatementError('statement bytes must be a Uint8Array')
  if (bytes.length > maxBytes) throw new StatementTooLargeError(`statement is ${bytes.length} bytes, the cap is ${maxBytes}`)
  let envelope: unknown
  try {
    envelope = dagCbor.decode(bytes)
  } catch (err) {
    throw decodeError(err)
  }
  const env = envelope as Record<string, unknown>
  if (env == null || typeof env !== 'object' || Array.isArray(env) || env instanceof Uint8Array || Object.keys(env).length !== 2 ||
      !(env.signature instanceof Uint8Array) || env.signature.length !== 64 || env.statement === undefined) {
    throw new MalformedStatementError('an envelope is { signature: 64 bytes, statement: map }')
  }
  const signature = env.signature
  let statementBytes: Uint8Array
  try {
    statementBytes = dagCbor.encode(env.statement)
  } catch {
    throw new MalformedStatementError('not encodable as dag-cbor')
  }
  // Canonical check: the canonical envelope around the canonical statement
  // must be exactly the bytes received (cheaper than re-encoding it whole).
  if (!bytesEqual(envelopeBytes(signature, statementBytes), bytes)) throw new NonCanonicalEncodingError('not canonical dag-cbor')
  const statement = statementFromWire(env.statement)

  const now = options.now ?? Date.now()
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
  if (statement.expiresAt !== null && now >= statement.expiresAt) throw new StatementExpiredError('statement has expired')
  if (statement.issuedAt > now + skew) throw new StatementNotYetValidError('statement is issued in the future')

  if (!verifyEd25519(signature, concat(domainTag(statement.type), statementBytes), statement.issuer)) {
    // Only on failure: find out whether the signature was made for another
    // domain, so a replayed signature is reported as such. Bounded by the
    // number of statement types.
    if (options.diagnoseDomain === false) throw new InvalidSignatureError('signature does not verify')
    for (const [type, tag] of DOMAIN_TAGS) {
      if (type !== statement.type && verifyEd25519(signature, concat(tag, statementBytes), statement.issuer)) {
        throw new WrongDomainError(`signature is for the ${type} domain`)
      }
    }
    if (verifyEd25519(signature, statementBytes, statement.issuer)) throw new WrongDomainError('signature has no domain tag')
    throw new InvalidSignatureError('signature does not verify')
  }
  if (statement.type === 'key-rotation' &&
      !verifyEd25519(statement.proof, rotationProofMessage(statement.issuer, statement.newKey), statement.newKey)) {
    throw new InvalidSignatureError('the new key did not sign the rotation proof')
  }
  const cid = statementCid(statementBytes)
  return { id: cid.toString(), cid, statement, signature: Uint8Array.from(signature), bytes: Uint8Array.from(bytes) }
}
