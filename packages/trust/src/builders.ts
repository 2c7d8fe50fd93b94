import { signEd25519 } from './ed25519.js'
import { parseStatementId, toPublicKey } from './ids.js'
import { rotationProofMessage, signStatement } from './statement.js'
import type { KeyId, StatementId } from './ids.js'
import type {
  DeviceCertificateBody, DeviceRevocationBody, KeyRotationBody, Labels, RelationshipBody, RelationshipKind,
  RevocationBody, SignedStatement, StorageGrantBody, StorageLayer
} from './index.js'
import type { KeyPair } from './keys.js'
import type { CID } from 'multiformats/cid'

/**
 * One function per statement type, over {@link signStatement}. Keys may be
 * given as bytes or as key ids; `issuedAt` defaults to `Date.now()`.
 */

type PublicKeyLike = Uint8Array | KeyId

interface Timing {
  issuedAt?: number
  nonce?: Uint8Array
}

interface Expiring extends Timing {
  /** milliseconds since the epoch; must be after `issuedAt` */
  expiresAt: number
}

/** The agent (`agentKey` is its current key) certifies that `device` acts for it. */
export function createDeviceCertificate (agentKey: KeyPair, init: Expiring & { device: PublicKeyLike, name?: string, labels?: Labels }): SignedStatement<DeviceCertificateBody> {
  const body: DeviceCertificateBody = { type: 'device-cert', device: toPublicKey(init.device) }
  if (init.name !== undefined) body.name = init.name
  if (init.labels !== undefined) body.labels = { ...init.labels }
  return signStatement(agentKey, body, init)
}

/** Revokes every certificate this agent issued for `device` at or before this revocation's `issuedAt`. */
export function createDeviceRevocation (agentKey: KeyPair, init: Timing & { device: PublicKeyLike }): SignedStatement<DeviceRevocationBody> {
  return signStatement(agentKey, { type: 'device-revocation', device: toPublicKey(init.device) }, init)
}

/** Rotates an agent from `oldKey` to `newKey`; signed by the old key, with the new key's proof of possession. */
export function createKeyRotation (oldKey: KeyPair, newKey: KeyPair, init: Timing = {}): SignedStatement<KeyRotationBody> {
  const proof = signEd25519(rotationProofMessage(oldKey.publicKey, newKey.publicKey), newKey.secretKey)
  return signStatement(oldKey, { type: 'key-rotation', newKey: Uint8Array.from(newKey.publicKey), proof }, init)
}

/** The agent attests a relationship with `subject` (an agent id or its key). */
export function createRelationship (agentKey: KeyPair, init: Expiring & { subject: PublicKeyLike, kind: RelationshipKind }): SignedStatement<RelationshipBody> {
  return signStatement(agentKey, { type: 'relationship', subject: toPublicKey(init.subject), kind: init.kind }, init)
}

/**
 * The agent offers `grantee` storage in `layer` up to `quotaBytes` on its
 * nodes — only on nodes whose labels include every entry of `labels`, if given.
 */
export function createStorageGrant (agentKey: KeyPair, init: Expiring & { grantee: PublicKeyLike, layer: StorageLayer, quotaBytes: number, labels?: Labels }): SignedStatement<StorageGrantBody> {
  const body: StorageGrantBody = { type: 'storage-grant', grantee: toPublicKey(init.grantee), layer: init.layer, quotaBytes: init.quotaBytes }
  if (init.labels !== undefined) body.labels = { ...init.labels }
  return signStatement(agentKey, body, init)
}

/** Revokes a relationship, storage grant or device certificate by its statement id. */
export function createRevocation (agentKey: KeyPair, init: Timing & { target: StatementId | CID }): SignedStatement<RevocationBody> {
  return signStatement(agentKey, { type: 'revocation', target: parseStatementId(init.target) }, init)
}
