/**
 * @packageDocumentation
 *
 * `@hearth/trust` holds identities and the statements between them: agent
 * and device keys (Ed25519), device certificates, key rotations, signed
 * attestations (relationships, storage grants) and their revocations, and
 * the trust graph that decides who may write and whose content a node
 * replicates. It does no I/O beyond its key files and its own SQLite file.
 *
 * @example
 * ```ts
 * const agent = generateKeyPair()
 * const graph = createTrustGraph({ path: 'trust.sqlite' }, { clock: { now: Date.now } })
 * const cert = createDeviceCertificate(agent, { device: deviceKey.publicKey, expiresAt: Date.now() + YEAR })
 * graph.add(cert.bytes)
 * graph.agentOfDevice(keyIdFromPublicKey(deviceKey.publicKey))?.agent // === keyIdFromPublicKey(agent.publicKey)
 * ```
 */
import { TrustGraphImpl } from './trust-graph.js'
import type { AgentId, DeviceId, KeyId, StatementId } from './ids.js'
import type { ComponentLogger } from './logger.js'
import type { CID } from 'multiformats/cid'

export { generateKeyPair, keyPairFromSecret, readKeyFile, writeKeyFile, loadOrCreateKeyFile } from './keys.js'
export type { KeyPair } from './keys.js'
export type { Logger, ComponentLogger } from './logger.js'
export * from './errors.js'
export { ed, signEd25519, verifyEd25519 } from './ed25519.js'
export { keyIdFromPublicKey, publicKeyFromKeyId, isKeyId, toPublicKey, parseStatementId, statementCid } from './ids.js'
export type { KeyId, AgentId, DeviceId, StatementId } from './ids.js'
export { signStatement, verifyStatement, domainTag, rotationProofMessage } from './statement.js'
export {
  createDeviceCertificate, createDeviceRevocation, createKeyRotation, createRelationship, createStorageGrant, createRevocation
} from './builders.js'
export { STATEMENT_TYPES, RELATIONSHIP_KINDS, STORAGE_LAYERS, PERMANENT_TYPES } from './statement-schema.js'
export { MAX_STATEMENT_BYTES, DEFAULT_CLOCK_SKEW_MS, SCHEMA_MAJOR, SCHEMA_MINOR } from './constants.js'

// ---------------------------------------------------------------- statements

export type StatementType = 'device-cert' | 'device-revocation' | 'key-rotation' | 'relationship' | 'storage-grant' | 'revocation'
export type RelationshipKind = 'family' | 'friend' | 'community'
/** The pinned storage layers (the unpinned `cache` cannot be granted). */
export type StorageLayer = 'sovereign' | 'reciprocal' | 'invested' | 'gift'
/** Node labels (`{ region: 'eu', rack: 'r1' }`); in a grant, constraints every one of which a node must carry. */
export type Labels = Record<string, string>

/** Agent → device: the device acts for the agent until `expiresAt`. Wire: `device`, `name?`, `labels?`. */
export interface DeviceCertificateBody { type: 'device-cert', device: Uint8Array, name?: string, labels?: Labels }
/** Revokes the issuing agent's certificates for `device` issued at or before this statement. Permanent. */
export interface DeviceRevocationBody { type: 'device-revocation', device: Uint8Array }
/** Old key → new key, with `proof` = the new key's signature over {@link rotationProofMessage}. Permanent. Wire: `new_key`, `proof`. */
export interface KeyRotationBody { type: 'key-rotation', newKey: Uint8Array, proof: Uint8Array }
/** The issuing agent attests a relationship with `subject` (an agent's key). */
export interface RelationshipBody { type: 'relationship', subject: Uint8Array, kind: RelationshipKind }
/** The issuing agent offers `grantee` storage in `layer` up to `quotaBytes` on its nodes matching `labels`. Wire: `quota_bytes`. */
export interface StorageGrantBody { type: 'storage-grant', grantee: Uint8Array, layer: StorageLayer, quotaBytes: number, labels?: Labels }
/** Revokes a device certificate, relationship or grant of the same agent by statement id. Permanent. */
export interface RevocationBody { type: 'revocation', target: CID }

export type StatementBody = DeviceCertificateBody | DeviceRevocationBody | KeyRotationBody | RelationshipBody | StorageGrantBody | RevocationBody

/** Fields every statement carries. Times are integer milliseconds since the Unix epoch. */
export interface StatementHeader {
  /** `[major, minor]`; this library writes `[1, 0]` and reads any `[1, n]`. */
  schemaVersion: readonly [number, number]
  /** the signing Ed25519 public key (32 bytes) */
  issuer: Uint8Array
  issuedAt: number
  /** null exactly for the permanent types (revocations, rotations) */
  expiresAt: number | null
  /** 16 random bytes, so two otherwise equal statements get distinct ids */
  nonce: Uint8Array
}

export type Statement<B extends StatementBody = StatementBody> = B & StatementHeader

export interface SignedStatement<B extends StatementBody = StatementBody> {
  /** CIDv1 (dag-cbor, sha2-256) of the statement's canonical bytes, as a base32 string */
  id: StatementId
  cid: CID
  statement: Statement<B>
  signature: Uint8Array
  /** the wire bytes: canonical dag-cbor `{ signature, statement }` */
  bytes: Uint8Array
}

export interface SignOptions {
  /** defaults to `Date.now()` */
  issuedAt?: number
  /** required for expiring types, must be absent for permanent ones */
  expiresAt?: number
  /** defaults to 16 random bytes */
  nonce?: Uint8Array
}

export interface VerifyOptions {
  /** the verifier's time; defaults to `Date.now()` */
  now?: number
  /** how far `issued_at` may be ahead of `now`; default 5 minutes */
  clockSkewMs?: number
  /** wire size cap; default 16 KiB */
  maxBytes?: number
  /**
   * When the signature fails, try the other statement domains to report
   * ERR_WRONG_DOMAIN instead of ERR_INVALID_SIGNATURE. Costs up to 6 more
   * verifications per bad signature; default true.
   */
  diagnoseDomain?: boolean
}

// ---------------------------------------------------------------- trust graph

export interface Clock { now: () => number }

export interface TrustGraphInit {
  /** SQLite file path (created if missing), or `:memory:` */
  path: string
  /** default {@link DEFAULT_CLOCK_SKEW_MS} */
  clockSkewMs?: number
  /** default {@link MAX_STATEMENT_BYTES} */
  maxStatementBytes?: number
  /** see {@link VerifyOptions.diagnoseDomain}; default true */
  diagnoseDomain?: boolean
}

export interface TrustGraphComponents {
  logger?: ComponentLogger
  /** defaults to `Date.now`; every validity decision uses it */
  clock?: Clock
}

export interface AddResult {
  id: StatementId
  /** false when the statement was already stored (adding is idempotent) */
  added: boolean
  /**
   * whether the statement counts now. A statement can be stored and not
   * count: a certificate its agent revoked earlier, a revocation by someone
   * other than the target's issuer. Such statements are kept (a later
   * rotation can change who an issuer is) but never counted or relayed.
   */
  valid: boolean
  statement: SignedStatement
}

export interface DeviceInfo {
  device: DeviceId
  agent: AgentId
  name?: string
  labels: Labels
  /** id of the newest valid certificate */
  certificate: StatementId
  issuedAt: number
  expiresAt: number
}

export interface AgentKeyInfo {
  key: KeyId
  /** when the rotation that introduced it was issued; null for the agent's first key */
  activatedAt: number | null
  /** null for the current key */
  rotatedAt: number | null
}

export interface AgentInfo {
  id: AgentId
  currentKey: KeyId
  /** oldest first */
  keys: AgentKeyInfo[]
  devices: DeviceInfo[]
}

export interface RelationshipInfo {
  /** the other agent */
  agent: AgentId
  kind: RelationshipKind
  /** id of this agent's valid attestation about the other, if any */
  outgoing?: StatementId
  /** id of the other agent's valid attestation about this one, if any */
  incoming?: StatementId
  /** both sides attest this kind */
  mutual: boolean
}

export interface GrantInfo {
  id: StatementId
  grantor: AgentId
  grantee: AgentId
  layer: StorageLayer
  quotaBytes: number
  /** label constraints; `{}` means any node of the grantor */
  labels: Labels
  issuedAt: number
  expiresAt: number
}

export interface WriteAcl {
  owner: AgentId
  writers?: readonly AgentId[]
}

export interface NodeIdentity {
  /** the agent this node's device acts for */
  agentId: AgentId
  /** this node's labels (`region`, `cluster`, `rack` …) */
  labels?: Labels
}

/** One line of the replication policy: hold `agent`'s pins in `layer`, up to `quotaBytes`. */
export interface ReplicationTarget {
  agent: AgentId
  layer: StorageLayer
  quotaBytes: number
  /** the grant this line comes from */
  grantId: StatementId
  expiresAt: number
}

export interface StatementsQuery {
  /** return statements stored after this cursor (a `seq` from an earlier page); default 0 */
  since?: number
  /** default 1000, at most 10,000 */
  limit?: number
}

export interface StoredStatement {
  /** local insertion order; use as the `since` cursor */
  seq: number
  id: StatementId
  type: StatementType
  bytes: Uint8Array
}

export interface StatementsPage {
  statements: StoredStatement[]
  /** pass as `since` to continue */
  cursor: number
  /** true when more statements follow the page */
  more: boolean
}

/**
 * A JSON-ready view of the valid graph (snake_case, as every view crossing a
 * boundary). Each list holds at most `limit` entries; `counts` count what
 * the lists hold, except `statements`, the number stored.
 */
export interface GraphSnapshot {
  schema_version: [number, number]
  generated_at: number
  counts: { statements: number, agents: number, devices: number, relationships: number, grants: number }
  agents: Array<{ id: AgentId, current_key: KeyId, keys: KeyId[], devices: Array<{ device: DeviceId, name?: string, labels: Labels, certificate: StatementId, expires_at: number }> }>
  relationships: Array<{ id: StatementId, from: AgentId, to: AgentId, kind: RelationshipKind, mutual: boolean, expires_at: number }>
  grants: Array<{ id: StatementId, grantor: AgentId, grantee: AgentId, layer: StorageLayer, quota_bytes: number, labels: Labels, expires_at: number }>
  /** true when a list was cut at the snapshot limit */
  truncated: boolean
}

/**
 * The set of valid statements a node knows, in one SQLite file. All methods
 * are synchronous (better-sqlite3). Every query applies validity at the
 * clock's current time: expired, revoked and out-of-key-window statements
 * never count.
 */
export interface TrustGraph {
  /**
   * Verifies a signed statement (see {@link verifyStatement}) and that its key
   * was not rotated away when it was issued (ERR_KEY_ROTATED), then stores
   * it. Throws a {@link TrustError} and stores nothing on any failure; a
   * statement already stored returns `added: false`. See {@link AddResult.valid}.
   */
  add: (bytes: Uint8Array) => AddResult
  has: (id: StatementId) => boolean
  /** the stored wire bytes of a statement */
  get: (id: StatementId) => Uint8Array | undefined
  /** the agent of the key: the first key of its rotation chain (a key outside any chain is its own agent) */
  resolveAgent: (key: KeyId) => AgentId
  /** the agent's current (newest) key */
  currentKey: (agent: AgentId) => KeyId
  agent: (agent: AgentId) => AgentInfo
  /** the agent that currently certifies the device (newest valid certificate), if any */
  agentOfDevice: (device: DeviceId) => DeviceInfo | undefined
  /** like {@link agentOfDevice} but throws KeyRevokedError, StatementExpiredError or DeviceNotCertifiedError */
  requireDevice: (device: DeviceId) => DeviceInfo
  devicesOf: (agent: AgentId) => DeviceInfo[]
  relationships: (agent: AgentId) => RelationshipInfo[]
  grantsGiven: (agent: AgentId) => GrantInfo[]
  grantsReceived: (agent: AgentId) => GrantInfo[]
  /** true when the device holds a valid certificate from the ACL's owner or one of its writers */
  mayWrite: (device: DeviceId, acl: WriteAcl) => boolean
  /**
   * Whose pins this node holds: valid grants given by the node's agent whose
   * label constraints the node's labels satisfy, one line per (grantee, layer)
   * with the largest quota among them.
   */
  replicationPolicy: (node: NodeIdentity) => ReplicationTarget[]
  /** Stored statements that are valid now (plus revocations and rotations), in local order, for exchange with peers. */
  statements: (query?: StatementsQuery) => StatementsPage
  graphSnapshot: (options?: { limit?: number }) => GraphSnapshot
  /**
   * Deletes statements that can never count again: expired ones and those
   * issued by a key after it was rotated away. Either would be refused if
   * offered again, so pruning changes no answer. Returns how many went.
   * Revocations and rotations are permanent and stay.
   */
  prune: () => number
  /** called after each newly stored statement; returns an unsubscribe function */
  onStatement: (listener: (statement: AddResult) => void) => () => void
  close: () => void
}

export function createTrustGraph (init: TrustGraphInit, components: TrustGraphComponents = {}): TrustGraph {
  return new TrustGraphImpl(init, components)
}
