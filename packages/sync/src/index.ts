/**
 * @packageDocumentation
 *
 * `@hearth/sync` keeps Automerge documents in SQLite and syncs them with
 * peers. Every change carries an Ed25519 signature by a device key over its
 * hash; incoming changes are checked (signature, actor bound to the device,
 * write permission under the document's ACL) before anything is applied, and
 * a message with one bad change is refused whole. The sync engine runs the
 * Automerge sync protocol per (peer, document) over any message channel,
 * persists sync states per peer, and sends a peer only the documents it
 * subscribed to and may read. Document ids are automerge-repo's
 * (`automerge:<base58check>`).
 *
 * @example
 * ```ts
 * const signer = createDeviceSigner(deviceKeyPair)
 * const verifier = createEd25519Verifier({ mayWrite: (d, acl) => graph.mayWrite(d, acl) })
 * const store = createDocumentStore({ path: 'docs.sqlite' }, { signer, verifier, logger })
 * const engine = createSyncEngine({}, { store, verifier, logger })
 * const { id } = store.create({ owner: myAgent, content: { title: 'hello' } })
 * store.change(id, d => { d.title = 'hello, world' })
 * const session = engine.connect(remoteDeviceId, channel)
 * session.subscribe([id])
 * ```
 */
import type * as A from '@automerge/automerge'
import type { AgentId, DeviceId, ComponentLogger } from '@hearth/trust'
import type { ChangeSignature, WireHeader } from './codec.js'
import type { DocumentId } from './document-id.js'
import { SqliteDocumentStore } from './document-store.js'
import { SyncEngineImpl } from './engine.js'

export { generateDocumentId, parseDocumentId, isDocumentId, fromBytes, URL_PREFIX } from './document-id.js'
export type { DocumentId, ParsedDocumentId } from './document-id.js'
export * from './errors.js'
export * from './constants.js'
export { actorIdFromDevice, changeSigningMessage, headerSigningMessage, createDeviceSigner, createEd25519Verifier } from './signing.js'
export type { Ed25519VerifierInit } from './signing.js'
export { encodeMessage, decodeMessage, WIRE_VERSION } from './codec.js'
export type { WireMessage, ChangeSignature, WireHeader } from './codec.js'
export { parseHeader, encodeHeader } from './header.js'
export type { DocumentHeader } from './header.js'
export { extractChanges } from './changes.js'
export type { ExtractedChange } from './changes.js'
export { createMemoryChannelPair } from './memory-channel.js'
export { agentMayRead, agentMayWrite } from './client-session.js'
export type { MemoryChannelOptions } from './memory-channel.js'
export type { Logger, ComponentLogger } from '@hearth/trust'

// ---------------------------------------------------------------- identity and ACL

/**
 * Who may do what to a document. Agent ids (`z6Mk…`). Writers may write,
 * readers may only receive the document; the owner may do both and is the
 * only one who may change the ACL. `public` documents may be read by anyone.
 */
export interface DocumentAcl {
  owner: AgentId
  writers: AgentId[]
  readers: AgentId[]
  public: boolean
}

/**
 * `device`: signed by the device whose key the change's actor is derived
 * from ({@link actorIdFromDevice}). `custodial`: signed by a daemon's device
 * for a client without keys (an automerge-repo browser behind a doorway),
 * after the daemon checked the client's agent against the ACL; the actor is
 * the client's own and is not bound to the signer.
 */
export type SignatureKind = 'device' | 'custodial'

/** Signs with this node's device key. `sign` receives the full domain-tagged message. */
export interface Signer {
  readonly deviceId: DeviceId
  sign: (message: Uint8Array) => Uint8Array
}

/**
 * Checks signatures and permissions. The daemon builds one with
 * {@link createEd25519Verifier} over the trust graph's `mayWrite`.
 */
export interface Verifier {
  /** Ed25519 verification of `signature` over `message` by the device's key */
  verify: (message: Uint8Array, signature: Uint8Array, device: DeviceId) => boolean
  /** the device acts for the owner or one of the writers */
  mayWrite: (device: DeviceId, acl: { owner: AgentId, writers: readonly AgentId[] }) => boolean
  /** default: `acl.public`, or mayWrite over owner, writers and readers */
  mayRead?: (device: DeviceId, acl: DocumentAcl) => boolean
}

// ---------------------------------------------------------------- store

export interface DocumentStoreInit {
  /** SQLite file (created if missing) */
  path: string
  /** default {@link MAX_CHANGE_BYTES} */
  maxChangeBytes?: number
  /** default {@link MAX_CHANGES_PER_MESSAGE} */
  maxChangesPerMessage?: number
  /** loaded Automerge documents kept in memory; default {@link DOC_CACHE_SIZE} */
  cacheSize?: number
  /**
   * `full` (default): this node's own changes and headers are on disk when
   * the call returns (a lost local change could make this device reuse an
   * actor sequence number); what arrives from peers commits without waiting
   * for the disk (WAL, NORMAL) — it can be fetched again. `normal`: nothing
   * waits (tests, benchmarks of the sync path).
   */
  synchronous?: 'full' | 'normal'
}


export interface DocumentStoreComponents {
  signer: Signer
  verifier: Verifier
  logger?: ComponentLogger
  clock?: { now: () => number }
}

export interface CreateDocumentInit {
  /** initial JSON content (an object); default `{}` */
  content?: Record<string, unknown>
  /** the owning agent; this node's device must act for it */
  owner: AgentId
  writers?: AgentId[]
  readers?: AgentId[]
  public?: boolean
  /** an explicit id (bare or `automerge:` URL); default a fresh one */
  id?: string
  createdAt?: number
}

/** The JSON view of a document's metadata (snake_case, as every view that crosses a boundary). */
export interface DocumentInfo {
  id: DocumentId
  url: string
  owner: AgentId
  acl: DocumentAcl
  schema_version: number
  created_at: number
  /** grows with each ACL update */
  header_version: number
  heads: string[]
  /** change rows not yet folded into a snapshot */
  pending_changes: number
}

export interface ChangeResult {
  heads: string[]
  /** the new change's hash, or null when the function changed nothing */
  hash: string | null
}

export interface ApplyResult {
  /** changes newly stored */
  accepted: number
  heads: string[]
}

export interface CompactionResult {
  compacted: boolean
  snapshotBytes: number
  droppedChanges: number
}

export interface ReceiveOptions {
  /** signatures that travelled beside the changes (daemon to daemon, HTTP with signed changes) */
  signatures?: readonly ChangeSignature[]
  /**
   * Sign the client's new changes on behalf of this agent (custodial), after
   * checking the agent is the owner or a writer. For clients without keys.
   * An unknown document is then created with this agent as its owner.
   */
  custodialFor?: AgentId
  /** who sent it (a peer's device id, 'http', …), for logs and events */
  origin?: string
  /**
   * Apply nothing from the sender (a reader that is not a writer): the sync
   * state must come from `initSyncState({ readOnly: true })`; the message
   * still updates it so the sender gets this node's changes.
   */
  readOnly?: boolean
}

export interface HeadsEvent {
  id: DocumentId
  heads: string[]
  /**
   * 'local' for this node's own changes, 'acl' when the header (ACL) changed
   * (heads unchanged), else the origin given when receiving
   */
  origin: string
}

/** what a session keeps per (peer, document), persisted across restarts */
export interface PeerDocState {
  state: A.SyncState
  /** header version last sent to the peer; 0 = never */
  headerVersion: number
}

export interface DocumentStoreStats {
  documents: number
  storedChanges: number
  signatures: number
  snapshots: number
  loadedDocuments: number
  localChanges: number
  acceptedChanges: number
  rejectedMessages: number
  compactions: number
}

/**
 * Automerge documents in one SQLite file. Synchronous except compaction.
 * Methods taking an id accept `automerge:<id>` or the bare id and throw
 * {@link InvalidDocumentIdError} or {@link DocumentNotFoundError}.
 */
export interface DocumentStore {
  readonly deviceId: DeviceId
  /** this node's Automerge actor id, derived from its device key */
  readonly actorId: string
  /** Creates a document from JSON content, signed by this node as a device of `owner`. */
  create: (init: CreateDocumentInit) => DocumentInfo
  has: (id: string) => boolean
  info: (id: string) => DocumentInfo
  /** ids in order, paged by `after` */
  list: (opts?: { after?: string, limit?: number }) => DocumentId[]
  acl: (id: string) => DocumentAcl
  /** owner's devices only: writes a new header version with the new writers / readers / public */
  updateAcl: (id: string, acl: Partial<Omit<DocumentAcl, 'owner'>>) => DocumentInfo
  /** the signed header, to send to a peer */
  signedHeader: (id: string) => WireHeader
  /** verifies and stores a header from a peer; true when it created a document or raised the ACL version */
  importHeader: (header: WireHeader, expectedId?: DocumentId) => boolean
  /** the loaded Automerge document (read it, never change it directly) */
  doc: (id: string) => A.Doc<unknown>
  /** the JSON projection and its heads (for an ETag) */
  view: (id: string) => { value: unknown, heads: string[] }
  heads: (id: string) => string[]
  /** the Automerge binary (`Automerge.save`) */
  save: (id: string) => Uint8Array
  /** a local change, signed by this device (or custodially for `custodialFor`) */
  change: (id: string, fn: (doc: any) => void, opts?: { message?: string, custodialFor?: AgentId }) => ChangeResult
  /** raw Automerge changes (or saved documents) with their signatures, or custodial; all checked before any is applied */
  applyChanges: (id: string, changes: readonly Uint8Array[], opts: ReceiveOptions) => ApplyResult
  /** a whole saved document from a peer, checked change by change; stored as the snapshot when this node holds nothing of it yet */
  importSnapshot: (id: string, bytes: Uint8Array, opts: ReceiveOptions) => ApplyResult
  /** nothing of the document's content is stored yet (only its header); does not load it */
  isEmpty: (id: string) => boolean
  /** every stored change signature of the document */
  allSignatures: (id: string) => ChangeSignature[]
  /** Automerge's generateSyncMessage over the stored document (an empty one if unknown) */
  generateSyncMessage: (id: string, state: A.SyncState) => [A.SyncState, Uint8Array | null]
  /** the signatures to send beside an outgoing sync message */
  signaturesForSyncMessage: (id: string, message: Uint8Array) => ChangeSignature[]
  /** verifies the message's new changes, then applies it; throws a SyncError and applies nothing if any change fails */
  receiveSyncMessage: (id: string, state: A.SyncState, message: Uint8Array, opts: ReceiveOptions) => { state: A.SyncState, result: ApplyResult }
  /** the persisted sync state with a peer (fresh if none) and the header version last sent to it */
  loadSyncState: (peer: string, id: string) => PeerDocState
  saveSyncStates: (peer: string, states: Iterable<[DocumentId, PeerDocState]>) => void
  /** the stored header's version (grows with each ACL update) */
  headerVersion: (id: string) => number
  /** snapshot + drop covered change rows, race-safe */
  compact: (id: string) => Promise<CompactionResult>
  /** new heads after a local change or accepted remote changes; returns unsubscribe */
  onHeads: (listener: (ev: HeadsEvent) => void) => () => void
  stats: () => DocumentStoreStats
  close: () => void
}

export function createDocumentStore (init: DocumentStoreInit, components: DocumentStoreComponents): DocumentStore {
  return new SqliteDocumentStore(init, components)
}

// ---------------------------------------------------------------- engine

/**
 * An ordered, reliable message stream to one peer (a libp2p stream with
 * length-prefixed frames, a WebSocket, an in-memory pair). `send` may return
 * a promise: the engine keeps at most `maxInFlight` unresolved sends per
 * session, which is its backpressure.
 */
export interface MessageChannel {
  send: (message: Uint8Array) => void | Promise<void>
  onMessage: (handler: (message: Uint8Array) => void) => void
  /** called when the remote side or the transport closes the channel */
  onClose?: (handler: () => void) => void
  close: () => void
}

export interface SyncEngineInit {
  /** default {@link MAX_MESSAGE_BYTES}, both directions */
  maxMessageBytes?: number
  /** documents a peer may subscribe to per session; default {@link MAX_DOCS_PER_SESSION} */
  maxDocsPerSession?: number
  /** unresolved sends per session; default {@link MAX_IN_FLIGHT} */
  maxInFlight?: number
  /** control messages waiting per session; default {@link MAX_CONTROL_QUEUE} */
  maxControlQueue?: number
  /** default {@link SYNC_STATE_FLUSH_MS} */
  syncStateFlushMs?: number
}

export interface SyncEngineComponents {
  store: DocumentStore
  verifier: Verifier
  logger?: ComponentLogger
  /**
   * A peer subscribed to a document this node does not hold: a peer that
   * holds a document offers it that way (this node would otherwise never
   * learn its id). Return true to ask the peer for it; the peer still sends
   * it only if this device may read it, and every change is checked as
   * usual. Default: never.
   */
  acceptOffer?: (peer: DeviceId, doc: DocumentId) => boolean
  /** a peer answered about a document with a doc-error (`ERR_DOC_NOT_FOUND`, `ERR_ACCESS_DENIED`, …) */
  onNotice?: (peer: DeviceId, doc: DocumentId, code: string) => void
}

export interface SessionStats {
  peer: DeviceId
  /** documents this side subscribed to at the peer */
  subscribed: number
  /** documents the peer subscribed to here */
  peerSubscribed: number
  /** documents waiting for a sync message to be generated */
  pending: number
  inFlight: number
  sentMessages: number
  sentBytes: number
  receivedMessages: number
  receivedBytes: number
  /** changes newly stored from this peer */
  acceptedChanges: number
  /** messages refused (bad signature, unauthorised writer, malformed, over a cap, not subscribed) */
  rejectedMessages: number
  /** control notices dropped because the control queue was full */
  droppedNotices: number
  /** doc-error notices received from the peer, by code */
  peerErrors: Record<string, number>
}

export interface PeerSession {
  readonly peer: DeviceId
  /** ask the peer for these documents and sync them both ways */
  subscribe: (ids: readonly string[]) => void
  unsubscribe: (ids: readonly string[]) => void
  stats: () => SessionStats
  /** resolves when nothing is pending or in flight in this direction (the peer may still answer) */
  idle: () => Promise<void>
  readonly closed: boolean
  close: () => void
}

/**
 * The automerge-repo network protocol's document messages, as a WebSocket
 * endpoint decodes them (CBOR) — `senderId` / `targetId` are the endpoint's
 * business. `request` is a `sync` from a client that lacks the document.
 */
export type ClientMessage =
  | { type: 'sync' | 'request', documentId: string, data: Uint8Array }
  | { type: 'doc-unavailable', documentId: string }

export interface ClientSessionInit {
  /** the agent the client acts for (its bearer token's) */
  agent: AgentId
  /** where messages for the client go; a promise is backpressure */
  send: (message: ClientMessage) => void | Promise<void>
  /** let the client create documents (owned by `agent`, header signed by this node); default false */
  allowCreate?: boolean
  /** the client reads only: none of its changes are taken, it creates nothing (a read-scope token); default false */
  readOnly?: boolean
  /**
   * persist sync states under this key (e.g. `repo:<storageId>` for a client
   * with durable storage); default: in memory for the session only
   */
  persistAs?: string
}

export interface ClientSessionStats {
  client: string
  agent: AgentId
  documents: number
  pending: number
  inFlight: number
  receivedMessages: number
  sentMessages: number
  sentBytes: number
  acceptedChanges: number
  rejectedMessages: number
  unavailable: number
}

export interface ClientSession {
  readonly clientId: string
  /** a message from the client; other types than sync / request are ignored */
  receive: (message: ClientMessage) => void
  stats: () => ClientSessionStats
  readonly closed: boolean
  close: () => void
}

export interface SyncEngineStats {
  sessions: number
  rejectedMessages: number
  acceptedChanges: number
}

export interface ConnectOptions {
  subscribe?: readonly string[]
  /**
   * The peer sent what no honest peer sends — an undecodable or oversized
   * message, a change or header whose signature does not verify, a message
   * type peers do not use — with the error code. A daemon strikes the peer.
   * Refusals an honest peer can cause (a race with an unsubscribe, an ACL it
   * has not seen change yet) are not reported.
   */
  onMisbehaviour?: (code: string) => void
}

export interface SyncEngine {
  /** starts a session over a channel to a peer (its device id, authenticated by the transport) */
  connect: (peer: DeviceId, channel: MessageChannel, opts?: ConnectOptions) => PeerSession
  sessions: () => PeerSession[]
  /** a keyless automerge-repo client (behind a doorway), see {@link ClientSession} */
  openClientSession: (clientId: string, init: ClientSessionInit) => ClientSession
  stats: () => SyncEngineStats
  start: () => void
  /** closes every session and flushes sync states */
  stop: () => void
}

export function createSyncEngine (init: SyncEngineInit, components: SyncEngineComponents): SyncEngine {
  return new SyncEngineImpl(init, components)
}
