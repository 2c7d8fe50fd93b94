import { createHash } from 'node:crypto'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidIdError } from './errors.js'

/**
 * A key id names an Ed25519 public key as a multikey: multibase base58btc
 * (`z…`) of the `ed25519-pub` multicodec (0xed 0x01) followed by the 32 key
 * bytes — the suffix of a `did:key`, so every id starts with `z6Mk`. Agent
 * ids and device ids are key ids: a device id is its device key's id, and an
 * agent id is the id of the agent's first (inception) key, which stays the
 * agent's id across key rotations.
 */
export type KeyId = string
export type AgentId = KeyId
export type DeviceId = KeyId
/** A statement id: CIDv1 (dag-cbor, sha2-256) of the statement's canonical bytes, base32 (`bafy…`). */
export type StatementId = string

const ED25519_PUB = [0xed, 0x01]
const DAG_CBOR = 0x71
const SHA2_256 = 0x12

export function keyIdFromPublicKey (publicKey: Uint8Array): KeyId {
  if (publicKey.length !== 32) throw new InvalidIdError('an Ed25519 public key is 32 bytes')
  const bytes = new Uint8Array(34)
  bytes.set(ED25519_PUB)
  bytes.set(publicKey, 2)
  return base58btc.encode(bytes)
}

export function publicKeyFromKeyId (id: KeyId): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(id)
  } catch {
    throw new InvalidIdError('not a base58btc multibase string')
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) {
    throw new InvalidIdError('not an ed25519-pub multikey')
  }
  const key = bytes.slice(2)
  // base58 has one spelling per byte string, but leading-zero quirks make the check cheap insurance.
  if (keyIdFromPublicKey(key) !== id) throw new InvalidIdError('not the canonical spelling of the key id')
  return key
}

/** True when `id` is a well-formed key id. */
export function isKeyId (id: unknown): id is KeyId {
  if (typeof id !== 'string') return false
  try {
    publicKeyFromKeyId(id)
    return true
  } catch {
    return false
  }
}

/** Accepts a public key or its id and returns the 32 key bytes. */
export function toPublicKey (key: Uint8Array | KeyId): Uint8Array {
  return typeof key === 'string' ? publicKeyFromKeyId(key) : Uint8Array.from(key)
}

export function statementCid (statementBytes: Uint8Array): CID {
  // Node's native SHA-256: the pure-JS one costs more than the rest of the envelope checks together.
  const digest = new Uint8Array(createHash('sha256').update(statementBytes).digest())
  return CID.createV1(DAG_CBOR, Digest.create(SHA2_256, digest))
}

/** True when `cid` has the shape of a statement id (CIDv1, dag-cbor, sha2-256). */
export function isStatementCid (cid: CID): boolean {
  return cid.version === 1 && cid.code === DAG_CBOR && cid.multihash.code === SHA2_256 && cid.multihash.digest.length === 32
}

export function parseStatementId (id: StatementId | CID): CID {
  let cid: CID | null
  try {
    cid = typeof id === 'string' ? CID.parse(id) : CID.asCID(id)
  } catch {
    cid = null
  }
  if (cid == null || !isStatementCid(cid)) throw new InvalidIdError('not a statement id (CIDv1 dag-cbor sha2-256)')
  return cid
}
