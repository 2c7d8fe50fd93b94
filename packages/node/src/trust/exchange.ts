import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { isDiskFull } from '@hearth/blobstore'
import { verifyStatement } from '@hearth/trust'
import type { Logger } from '@hearth/trust'
import { InvitationRejectedError, PairingFailedError } from '../errors.js'
import type { NodeStore } from '../node-store.js'
import { ProtocolError, framed, isRecord } from '../p2p/framing.js'
import { RateLimit } from '../p2p/rate-limit.js'
import { peersSpeaking, openStream } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import { InvalidInvitationError, decodeInvitation } from './invitation.js'
import type { TrustService, TrustSelf } from './service.js'

export const TRUST_PROTOCOL = '/hearth/trust/1.0.0'
export const PAIR_PROTOCOL = '/hearth/pair/1.0.0'

const FRAME_BYTES = 1024 * 1024
/** a stranger's request: a pull, or a push of its own device certificate (a few KiB at most) */
const STRANGER_FRAME_BYTES = 32 * 1024
/** each statement a stranger pushes counts this much against the per-minute rate */
const STRANGER_RATE_WEIGHT = 100
const TIMEOUT_MS = 10_000
/** statements per page of a pull (each at most 16 KiB, so a page fits a frame) */
const PAGE = 60
/** statements in one push */
const MAX_PUSH = 16
/** pages one pull may read before it stops (the next connection goes on) */
const MAX_PAGES = 500
/** statements a peer may send per minute before it is struck */
const RATE_PER_MINUTE = 5000
/** how far back, and how many, stored statements are offered to a newly identified peer */
const RECENT_MS = 120_000
const RECENT_MAX = 256
/** statements waiting to be pushed to one peer; beyond this the oldest are dropped (the periodic pull catches up) */
const OUTBOX_MAX = 1024

export interface TrustExchangeStats {
  received: number
  rejected: number
  pushed: number
  pulls: number
}

/**
 * Moves signed statements between daemons: on every new connection each side
 * pulls what the other has stored since last time (a cursor per peer, kept in
 * node.db), and every newly stored valid statement is pushed to connected
 * peers, who store and relay it in turn (duplicates stop the flood). Only
 * statements that verify are stored or relayed; a peer that sends bad ones is
 * struck and, after a few, disconnected and refused for a while.
 */
export class TrustExchange {
  readonly stats: TrustExchangeStats = { received: 0, rejected: 0, pushed: 0, pulls: 0 }
  private readonly host: HearthHost
  private readonly trust: TrustService
  private readonly store: NodeStore
  private readonly policy: PeerPolicy
  private readonly log: Logger
  private readonly onDiskFull?: (where: string) => void
  /** statements a peer may send a minute, pushes and stranger pulls together */
  private readonly rate = new RateLimit({ points: RATE_PER_MINUTE, perSeconds: 60 })
  private unsubscribe?: () => void
  private pullTimer?: ReturnType<typeof setInterval>
  /** per peer: statements to push, sent in batches over one stream at a time (a burst never needs more streams than the peer allows) */
  private readonly outbox = new Map<string, { peerId: PeerId, queue: Uint8Array[], sending: boolean }>()
  /** statements stored lately, offered again to each newly identified peer */
  private readonly recent: Array<{ at: number, bytes: Uint8Array }> = []
  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (!evt.detail.protocols.includes(TRUST_PROTOCOL)) return
    void this.pull(evt.detail.peerId).catch(err => {
      this.log.debug({ peer: evt.detail.peerId.toString(), err: err?.message }, 'trust pull failed')
    })
    // a statement stored after the peer pulled from us but before we knew it speaks the protocol
    // was pushed to nobody: offer what is recent again (duplicates are dropped by the graph)
    const since = Date.now() - RECENT_MS
    const again = this.recent.filter(r => r.at >= since).map(r => r.bytes)
    this.pushTo(evt.detail.peerId, ...again)
  }

  /** every connected peer is pulled from again this often, so a push that was lost (a reset stream, a peer busy at the time) is made good */
  private readonly pullIntervalMs: number

  constructor (init: { pullIntervalMs: number }, components: { host: HearthHost, trust: TrustService, store: NodeStore, policy: PeerPolicy, log: Logger, onDiskFull?: (where: string) => void }) {
    this.pullIntervalMs = init.pullIntervalMs
    this.host = components.host
    this.trust = components.trust
    this.store = components.store
    this.policy = components.policy
    this.log = components.log
    this.onDiskFull = components.onDiskFull
  }

  async start (): Promise<void> {
    // a stranger may pull a page (two devices that just related each learn the other's
    // certificates by pulling), never push; and it may pair, which is how it stops being one
    await this.policy.handle(TRUST_PROTOCOL, (stream, conn) => { void this.serve(stream, conn) }, { maxInboundStreams: 8, maxOutboundStreams: 8, runOnLimitedConnection: true, strangers: { maxStreams: 4 } })
    await this.policy.handle(PAIR_PROTOCOL, (stream, conn) => { void this.servePairing(stream, conn) }, { maxInboundStreams: 2, maxOutboundStreams: 2, runOnLimitedConnection: true, strangers: { maxStreams: 4 } })
    this.host.addEventListener('peer:identify', this.onIdentify as any)
    this.unsubscribe = this.trust.graph.onStatement(result => {
      if (!result.added || !result.valid) return
      const bytes = this.trust.graph.get(result.id)
      if (bytes == null) return
      this.recent.push({ at: Date.now(), bytes })
      if (this.recent.length > RECENT_MAX) this.recent.splice(0, this.recent.length - RECENT_MAX)
      this.push(bytes)
    })
    this.pullTimer = setInterval(() => { void this.pullAll() }, this.pullIntervalMs)
    this.pullTimer.unref?.()
  }

  /** Pulls from every connected peer that speaks the protocol, one after another (each pull reads only what is new since its cursor). */
  private async pullAll (): Promise<void> {
    for (const peerId of await peersSpeaking(this.host, TRUST_PROTOCOL).catch(() => [])) {
      await this.pull(peerId).catch(err => { this.log.debug({ peer: peerId.toString(), err: err?.message }, 'trust pull failed') })
    }
  }

  async stop (): Promise<void> {
    this.unsubscribe?.()
    clearInterval(this.pullTimer)
    this.outbox.clear()
    this.host.removeEventListener('peer:identify', this.onIdentify as any)
    await this.host.unhandle(TRUST_PROTOCOL).catch(() => {})
    await this.host.unhandle(PAIR_PROTOCOL).catch(() => {})
  }

  /**
   * Stores one statement a peer sent; a bad one earns the peer a strike.
   * False when this node could not store it (a full disk): a pull then stops
   * short of moving its cursor past it.
   */
  private accept (peer: string, bytes: unknown): boolean {
    if (!(bytes instanceof Uint8Array)) {
      this.stats.rejected++
      this.policy.offence(peer, 'statement is not bytes')
      return true
    }
    this.stats.received++
    try {
      this.trust.graph.add(bytes)
    } catch (err: any) {
      if (typeof err?.code === 'string' && err.name !== 'SqliteError') {
        this.stats.rejected++
        this.policy.offence(peer, err.code)
      } else if (isDiskFull(err)) {
        this.onDiskFull?.('trust statements')
        return false
      } else {
        this.log.error({ err: err?.message }, 'could not store a statement')
        return false
      }
    }
    return true
  }

  private async serve (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    const stranger = this.policy.classOf(conn.remotePeer) === 'stranger'
    const f = framed(stream, { maxBytes: stranger ? STRANGER_FRAME_BYTES : FRAME_BYTES, timeoutMs: TIMEOUT_MS, guard: this.policy.guard(peer) })
    try {
      const msg = await f.read()
      if (!isRecord(msg)) throw new ProtocolError('message is not a map')
      if (msg.type === 'pull') {
        let since = typeof msg.since === 'number' && Number.isSafeInteger(msg.since) && msg.since >= 0 ? msg.since : 0
        for (let pages = 0; pages < (stranger ? 1 : MAX_PAGES); pages++) {
          const page = this.trust.graph.statements({ since, limit: PAGE })
          await f.write({ type: 'page', statements: page.statements.map(s => s.bytes), cursor: page.cursor, more: page.more })
          since = page.cursor
          if (!page.more) break
        }
      } else if (msg.type === 'push' && stranger) {
        // a stranger may say who it is (its own device's certificate: that is how a
        // device that just made or joined an agent becomes known); anything else it
        // has is read when this node pulls from it, a page at a time
        const statements = msg.statements
        if (!Array.isArray(statements) || statements.length > MAX_PUSH) throw new ProtocolError('push holds 1 to 16 statements')
        if (!(await this.rate.take(peer, statements.length * STRANGER_RATE_WEIGHT)).ok) throw new ProtocolError('too many statements')
        const own = conn.remotePeer.publicKey?.raw
        for (const bytes of statements) {
          if (own != null && certifies(bytes, own)) this.accept(peer, bytes)
        }
      } else if (msg.type === 'push') {
        const statements = msg.statements
        if (!Array.isArray(statements) || statements.length > MAX_PUSH) throw new ProtocolError('push holds 1 to 16 statements')
        if (!(await this.rate.take(peer, statements.length)).ok) throw new ProtocolError('too many statements')
        for (const s of statements) this.accept(peer, s)
      } else {
        throw new ProtocolError('unknown message type')
      }
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.policy.offence(peer, err.message)
      f.abort(err?.message ?? 'error')
    }
  }

  /** Reads everything the peer stored since our cursor for it. */
  async pull (peerId: PeerId): Promise<number> {
    const peer = peerId.toString()
    const stream = await openStream(this.host, peerId, TRUST_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS), runOnLimitedConnection: true })
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS, guard: this.policy.guard(peerId) })
    // from a stranger, one page per pull: its own certificates come first, and
    // each pull goes on from the last one's cursor
    const maxPages = this.policy.classOf(peerId) === 'stranger' ? 1 : MAX_PAGES
    this.stats.pulls++
    let n = 0
    try {
      await f.write({ type: 'pull', since: this.store.getCursor(peer, 'trust') })
      for (let pages = 0; pages < maxPages; pages++) {
        const page = await f.read<Record<string, unknown>>()
        if (!isRecord(page) || page.type !== 'page' || !Array.isArray(page.statements) || page.statements.length > PAGE ||
            typeof page.cursor !== 'number' || !Number.isSafeInteger(page.cursor)) {
          throw new ProtocolError('bad page')
        }
        if (!(await this.rate.take(peer, page.statements.length)).ok) throw new ProtocolError('too many statements')
        for (const s of page.statements) {
          if (!this.accept(peer, s)) throw new Error('could not store a statement: the cursor stays')
        }
        n += page.statements.length
        this.store.setCursor(peer, 'trust', page.cursor)
        if (page.more !== true) break
      }
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.policy.offence(peer, err.message)
      f.abort(err?.message ?? 'error')
      throw err
    }
    return n
  }

  private push (bytes: Uint8Array | undefined): void {
    if (bytes == null) return
    void peersSpeaking(this.host, TRUST_PROTOCOL).then(peers => { for (const peerId of peers) this.pushTo(peerId, bytes) })
  }

  private pushTo (peerId: PeerId, ...statements: Uint8Array[]): void {
    if (statements.length === 0) return
    const key = peerId.toString()
    let box = this.outbox.get(key)
    if (box == null) this.outbox.set(key, box = { peerId, queue: [], sending: false })
    box.queue.push(...statements)
    if (box.queue.length > OUTBOX_MAX) box.queue.splice(0, box.queue.length - OUTBOX_MAX)
    if (!box.sending) void this.drainOutbox(key, box)
  }

  private async drainOutbox (key: string, box: { peerId: PeerId, queue: Uint8Array[], sending: boolean }): Promise<void> {
    box.sending = true
    try {
      while (box.queue.length > 0) {
        const statements = box.queue.splice(0, MAX_PUSH)
        try {
          const stream = await openStream(this.host, box.peerId, TRUST_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS), runOnLimitedConnection: true })
          const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS, guard: this.policy.guard(box.peerId) })
          await f.write({ type: 'push', statements })
          await f.close()
          this.stats.pushed++
        } catch (err: any) {
          // the peer's next periodic pull (or ours of it) makes this good
          this.log.debug({ peer: key, err: err?.message }, 'trust push failed')
          box.queue.length = 0
        }
      }
    } finally {
      box.sending = false
      if (box.queue.length === 0) this.outbox.delete(key)
    }
  }

  /** The inviting side: certifies the device whose key the Noise handshake proved. */
  private async servePairing (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    const f = framed(stream, { maxBytes: 64 * 1024, timeoutMs: TIMEOUT_MS, guard: this.policy.guard(peer) })
    try {
      const msg = await f.read()
      if (!isRecord(msg) || msg.type !== 'join' || !(msg.secret instanceof Uint8Array) || msg.secret.length !== 32) throw new ProtocolError('bad join message')
      const name = typeof msg.name === 'string' ? msg.name.slice(0, 256) : undefined
      const labels = isRecord(msg.labels) ? Object.fromEntries(Object.entries(msg.labels).filter(([, v]) => typeof v === 'string').slice(0, 16)) as Record<string, string> : undefined
      const device = conn.remotePeer.publicKey?.raw
      if (device == null || device.length !== 32) throw new ProtocolError('the peer has no Ed25519 key')
      try {
        const { certificate, statements } = this.trust.acceptPairing(msg.secret, device, { name, labels })
        await f.write({ type: 'paired', certificate, statements })
      } catch (err: any) {
        if (!(err instanceof InvitationRejectedError)) throw err
        await f.write({ type: 'error', code: err.code, message: err.message })
        this.policy.offence(peer, 'bad invitation secret', 2)
      }
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.policy.offence(peer, err.message)
      this.log.warn({ peer, err: err?.message }, 'pairing failed')
      f.abort(err?.message ?? 'error')
    }
  }

  /**
   * Sends the join message and reads the answer. A stream that closes before
   * the join was written (a connection being replaced while we dial) is
   * retried on a new stream: the inviter cannot have used the secret yet.
   * Once the join is out, a failure is final, since the secret may be spent.
   */
  private async redeem (peerId: PeerId, join: Record<string, unknown>): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      let stream: Stream
      try {
        stream = await openStream(this.host, peerId, PAIR_PROTOCOL, { signal: AbortSignal.timeout(15_000), runOnLimitedConnection: true })
      } catch (err: any) {
        throw new PairingFailedError(`could not reach the inviting device: ${err?.message ?? err}`)
      }
      const f = framed(stream, { maxBytes: 64 * 1024 * 1024, timeoutMs: 30_000, guard: this.policy.guard(peerId, { asked: true }) })
      try {
        await f.write(join)
      } catch (err: any) {
        f.abort('pairing failed')
        if (attempt < 3) {
          this.log.debug({ peer: peerId.toString(), err: err?.message }, 'pairing stream closed before the join was sent; retrying')
          continue
        }
        throw new PairingFailedError(`pairing was cut off: ${err?.message ?? err}`)
      }
      let reply: unknown
      try {
        reply = await f.read()
      } catch (err: any) {
        f.abort('pairing failed')
        throw new PairingFailedError(`pairing was cut off: ${err?.message ?? err}`)
      }
      await f.close().catch(() => {})
      return reply
    }
  }

  /**
   * The joining side: redeems an invitation and stores the certificate it
   * brings back. `beforeAdopt` runs once the certificate is known good and
   * before it is stored (a device giving up its own fresh agent retires it then).
   */
  async join (invitationText: string, opts: { name?: string, labels?: Record<string, string>, beforeAdopt?: () => Promise<void> }): Promise<TrustSelf> {
    const inv = decodeInvitation(invitationText)
    if (inv.expiresAt < Date.now()) throw new InvitationRejectedError('the invitation has expired')
    let peerId: PeerId
    try { peerId = peerIdFromString(inv.peer) } catch { throw new InvalidInvitationError('the invitation names no valid peer') }
    const addrs = inv.addrs.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
    await this.host.peerStore.merge(peerId, { multiaddrs: addrs })
    const reply = await this.redeem(peerId, { type: 'join', secret: inv.secret, ...(opts.name != null ? { name: opts.name } : {}), ...(opts.labels != null ? { labels: opts.labels } : {}) })
    if (isRecord(reply) && reply.type === 'error') throw new InvitationRejectedError(String(reply.message ?? 'the invitation was refused'))
    if (!isRecord(reply) || reply.type !== 'paired' || !(reply.certificate instanceof Uint8Array) || !Array.isArray(reply.statements)) {
      throw new PairingFailedError('the inviting device answered something unexpected')
    }
    const device = this.host.peerId.publicKey?.raw
    if (device == null || !certifies(reply.certificate, device)) throw new PairingFailedError('the certificate does not certify this device')
    await opts.beforeAdopt?.()
    for (const s of reply.statements) {
      if (s instanceof Uint8Array) { try { this.trust.graph.add(s) } catch { /* counted as usual by the graph */ } }
    }
    this.trust.graph.add(reply.certificate)
    const self = this.trust.self()
    if (self.agent_id == null) throw new PairingFailedError('the certificate does not certify this device')
    return self
  }
}

/** Whether `bytes` is a well-signed device certificate for the device key `device` */
function certifies (bytes: unknown, device: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array)) return false
  try {
    const s = verifyStatement(bytes)
    return s.statement.type === 'device-cert' && Buffer.from(s.statement.device).equals(Buffer.from(device))
  } catch {
    return false
  }
}
