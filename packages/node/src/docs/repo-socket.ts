import { Decoder, Encoder } from 'cbor-x'
import type { WebSocket } from 'ws'
import type { ClientMessage, ClientSession } from '@hearth/sync'
import type { Logger } from '@hearth/trust'
import type { OpenDocuments } from './service.js'

/** automerge-repo's WebSocket network protocol: the one version there is */
export const REPO_PROTOCOL_VERSION = '1'
/** one socket message: a sync message (≤ 8 MiB) and its envelope */
export const MAX_SOCKET_MESSAGE = 8 * 1024 * 1024 + 64 * 1024
const JOIN_TIMEOUT_MS = 10_000
const MAX_EPHEMERAL_BYTES = 64 * 1024
const MAX_PEER_ID = 256
/** messages per second a client may send, with a burst */
const RATE = 500
const BURST = 2000

// automerge-repo encodes with these options (no Uint8Array tags, no records)
const encoder = new Encoder({ tagUint8Array: false, useRecords: false })
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true })

export interface RepoSocketHub {
  /** the server's peer id in the protocol */
  readonly serverId: string
  readonly docs: OpenDocuments
  readonly agent: string
  /** the client's token may only read: none of its changes are taken */
  readonly readOnly?: boolean
  readonly log: Logger
  /** other open sockets, for ephemeral messages */
  readonly sockets: Set<RepoSocket>
  /** a client joined or left */
  readonly onChange: () => void
}

interface JoinMessage { type: 'join', senderId: string, peerMetadata?: { storageId?: unknown, isEphemeral?: unknown }, supportedProtocolVersions?: unknown }

const isRecord = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)

/**
 * One automerge-repo client on `/automerge`: the join/peer handshake, then
 * its `sync` and `request` messages go to a client session of the engine
 * (changes signed by this node for the token's agent; documents the agent
 * may not read are `doc-unavailable`, like unknown ones). `ephemeral`
 * messages (presence, cursors) are relayed to the other clients that sync
 * the same document. Anything malformed ends the connection with an
 * `error` message.
 */
export class RepoSocket {
  clientId?: string
  private session?: ClientSession
  private readonly documents = new Set<string>()
  private tokens = BURST
  private lastRefill = Date.now()
  private readonly joinTimer: ReturnType<typeof setTimeout>
  private closed = false

  constructor (private readonly ws: WebSocket, private readonly hub: RepoSocketHub, private readonly onClose: () => void) {
    this.joinTimer = setTimeout(() => { this.fail('no join message') }, JOIN_TIMEOUT_MS)
    ws.on('message', (data, isBinary) => { this.receive(data as Buffer, isBinary) })
    ws.on('close', () => { this.cleanup() })
    ws.on('error', () => { this.cleanup() })
  }

  syncs (documentId: string): boolean { return this.documents.has(documentId) }

  private receive (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    if (this.closed) return
    if (!this.take()) return this.fail('too many messages')
    if (!isBinary || !Buffer.isBuffer(data)) return this.fail('messages are binary CBOR')
    let msg: unknown
    try {
      msg = decoder.decode(data)
    } catch {
      return this.fail('message is not CBOR')
    }
    if (!isRecord(msg) || typeof msg.type !== 'string') return this.fail('message has no type')
    if (this.clientId == null) {
      if (msg.type !== 'join') return this.fail('the first message must be join')
      return this.join(msg as unknown as JoinMessage)
    }
    if (msg.senderId !== this.clientId) return this.fail('senderId is not the joined peer')
    switch (msg.type) {
      case 'sync':
      case 'request': {
        if (typeof msg.documentId !== 'string' || msg.documentId.length > 128 || !(msg.data instanceof Uint8Array)) return this.fail(`malformed ${msg.type} message`)
        this.documents.add(msg.documentId)
        this.session?.receive({ type: msg.type, documentId: msg.documentId, data: msg.data })
        return
      }
      case 'ephemeral':
        return this.relay(msg)
      case 'join':
        return this.fail('already joined')
      default:
        // remote-heads / subscription gossip and future types: nothing to do here
    }
  }

  private join (msg: JoinMessage): void {
    clearTimeout(this.joinTimer)
    if (typeof msg.senderId !== 'string' || msg.senderId.length === 0 || msg.senderId.length > MAX_PEER_ID) return this.fail('join needs a senderId')
    const versions = msg.supportedProtocolVersions
    if (versions != null && !(Array.isArray(versions) && versions.includes(REPO_PROTOCOL_VERSION))) {
      return this.fail('unsupported protocol version', msg.senderId)
    }
    this.clientId = msg.senderId
    // a client that reconnects before its old socket timed out replaces it, as automerge-repo's own server does
    for (const other of this.hub.sockets) if (other !== this && other.clientId === this.clientId) other.close()
    const meta = isRecord(msg.peerMetadata) ? msg.peerMetadata : {}
    const storageId = typeof meta.storageId === 'string' && meta.storageId.length <= MAX_PEER_ID && meta.isEphemeral !== true ? meta.storageId : undefined
    this.session = this.hub.docs.engine.openClientSession(`repo:${this.clientId}`, {
      agent: this.hub.agent,
      allowCreate: this.hub.readOnly !== true,
      readOnly: this.hub.readOnly === true,
      // sync states outlive the socket only for clients with storage, keyed by agent so nobody reads another's
      ...(storageId != null ? { persistAs: `repo:${this.hub.agent}:${storageId}` } : {}),
      send: (m: ClientMessage) => this.sendToClient(m)
    })
    this.write({ type: 'peer', senderId: this.hub.serverId, targetId: this.clientId, selectedProtocolVersion: REPO_PROTOCOL_VERSION, peerMetadata: { isEphemeral: false } })
    this.hub.onChange()
    this.hub.log.debug({ client: this.clientId, storage: storageId != null }, 'automerge-repo client joined')
  }

  private async sendToClient (m: ClientMessage): Promise<void> {
    if (this.closed || this.clientId == null) throw new Error('socket closed')
    await this.write({ ...m, senderId: this.hub.serverId, targetId: this.clientId })
  }

  private relay (msg: Record<string, unknown>): void {
    const docId = msg.documentId
    if (typeof docId !== 'string' || !(msg.data instanceof Uint8Array) || msg.data.length > MAX_EPHEMERAL_BYTES) return this.fail('malformed ephemeral message')
    if (!this.documents.has(docId)) return
    for (const other of this.hub.sockets) {
      if (other === this || other.clientId == null || !other.syncs(docId)) continue
      void other.write({ ...msg, targetId: other.clientId }).catch(() => {})
    }
  }

  async write (message: Record<string, unknown>): Promise<void> {
    if (this.closed) throw new Error('socket closed')
    const bytes = encoder.encode(message)
    await new Promise<void>((resolve, reject) => {
      this.ws.send(bytes, { binary: true }, err => { if (err != null) reject(err); else resolve() })
    })
  }

  private take (): boolean {
    const now = Date.now()
    this.tokens = Math.min(BURST, this.tokens + (now - this.lastRefill) * RATE / 1000)
    this.lastRefill = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }

  private fail (reason: string, target?: string): void {
    if (this.closed) return
    this.hub.log.info({ client: this.clientId, reason }, 'closing an automerge-repo socket')
    const to = target ?? this.clientId
    const done = (): void => { this.ws.close(1008, reason.slice(0, 100)); this.cleanup() }
    if (to != null) this.write({ type: 'error', senderId: this.hub.serverId, targetId: to, message: reason }).then(done, done)
    else done()
  }

  close (reason = 'replaced or stopping'): void {
    if (this.closed) return
    this.ws.close(1001, reason)
    this.cleanup()
  }

  private cleanup (): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.joinTimer)
    this.session?.close()
    this.onClose()
  }
}
