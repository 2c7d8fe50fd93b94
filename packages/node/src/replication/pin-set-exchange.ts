import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import type { NodeStore } from '../node-store.js'
import { ProtocolError, framed, isRecord } from '../p2p/framing.js'
import { peersSpeaking, openStream } from '../p2p/host.js'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import type { TrustService } from '../trust/service.js'
import { MAX_PIN_SET_BYTES, peekPinSet, verifyPinSet } from './pin-sets.js'

/**
 * `/hearth/pins/1.0.0`: `{ type: 'get', agents, known? }` (at most 64 agents;
 * `known`, at most 256 `[device, seq]` pairs, the newest sets the asker
 * already holds) is answered `{ type: 'records', records }`: at most 256
 * signed pin sets of those agents' devices, leaving out any not newer than
 * the asker's. Each record is verified before it is stored; one that fails
 * its signature or shape costs the sender a strike.
 */
export const PINS_PROTOCOL = '/hearth/pins/1.0.0'
const TIMEOUT_MS = 10_000
export const MAX_AGENTS_PER_REQUEST = 64
const MAX_RECORDS_PER_REPLY = 256
/** peers asked at the same time in one round */
const ASKED_AT_ONCE = 4

export class PinSetExchange {
  constructor (private readonly c: { host: HearthHost, trust: TrustService, store: NodeStore, policy: PeerPolicy, log: Logger }) {}

  async start (): Promise<void> {
    await this.c.policy.handle(PINS_PROTOCOL, (stream, conn) => { void this.serve(stream, conn) }, { maxInboundStreams: 8, maxOutboundStreams: 8, runOnLimitedConnection: true, strangers: false })
  }

  async stop (): Promise<void> {
    await this.c.host.unhandle(PINS_PROTOCOL).catch(() => {})
  }

  /** Asks every connected peer that speaks the protocol (a few at a time) for the agents' pin sets newer than ours. */
  async learn (agents: string[]): Promise<void> {
    // a stranger has no pin sets worth verifying
    const peers = (await peersSpeaking(this.c.host, PINS_PROTOCOL)).filter(p => this.c.policy.classOf(p) !== 'stranger')
    const next = (): PeerId | undefined => peers.shift()
    await Promise.all(Array.from({ length: Math.min(ASKED_AT_ONCE, peers.length) }, async () => {
      for (let peerId = next(); peerId != null; peerId = next()) {
        try {
          await this.ask(peerId, agents)
        } catch (err: any) {
          this.c.log.debug({ peer: peerId.toString(), err: err?.message }, 'could not learn pin sets')
        }
      }
    }))
  }

  private async ask (peerId: PeerId, agents: string[]): Promise<void> {
    const held = new Map(this.c.store.pinSetsOf(agents).map(r => [r.device, r.seq]))
    const stream = await openStream(this.c.host, peerId, PINS_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS), runOnLimitedConnection: true })
    const f = framed(stream, { maxBytes: MAX_PIN_SET_BYTES * 4, timeoutMs: TIMEOUT_MS, maxBufferBytes: MAX_PIN_SET_BYTES * 4 + 1024, guard: this.c.policy.guard(peerId, { asked: true }) })
    try {
      await f.write({ type: 'get', agents, known: [...held].slice(0, MAX_RECORDS_PER_REPLY) })
      const reply = await f.read()
      await f.close()
      if (!isRecord(reply) || !Array.isArray(reply.records) || reply.records.length > MAX_RECORDS_PER_REPLY) throw new ProtocolError('bad pin-set reply')
      for (const bytes of reply.records) {
        if (!(bytes instanceof Uint8Array)) throw new ProtocolError('pin set is not bytes')
        // one we already hold (another peer relayed it first) needs no second verification
        const seen = peekPinSet(bytes)
        if (seen != null && (held.get(seen.device) ?? -1) >= seen.seq) continue
        try {
          const set = verifyPinSet(bytes, this.c.trust.graph)
          held.set(set.device, set.seq)
          this.c.store.putPinSet(set.device, set.agent, set.seq, bytes)
        } catch (err: any) {
          // a pin set of a device we have not seen certified yet is not an offence
          if (err?.message !== 'the device is not certified for that agent') this.c.policy.offence(peerId.toString(), 'bad pin set')
        }
      }
    } catch (err: any) {
      if (err instanceof ProtocolError) this.c.policy.offence(peerId.toString(), err.message)
      f.abort(err?.message ?? 'error')
      throw err
    }
  }

  private async serve (stream: Stream, conn: Connection): Promise<void> {
    const f = framed(stream, { maxBytes: 64 * 1024, timeoutMs: TIMEOUT_MS, guard: this.c.policy.guard(conn.remotePeer) })
    try {
      const msg = await f.read()
      if (!isRecord(msg) || msg.type !== 'get' || !Array.isArray(msg.agents) || msg.agents.length > MAX_AGENTS_PER_REQUEST || !msg.agents.every(a => typeof a === 'string')) {
        throw new ProtocolError('bad pin-set request')
      }
      const known = new Map<string, number>()
      if (msg.known !== undefined) {
        if (!Array.isArray(msg.known) || msg.known.length > MAX_RECORDS_PER_REPLY) throw new ProtocolError('bad pin-set request')
        for (const k of msg.known) {
          if (!Array.isArray(k) || typeof k[0] !== 'string' || k[0].length > 128 || typeof k[1] !== 'number') throw new ProtocolError('bad pin-set request')
          known.set(k[0], k[1])
        }
      }
      const records = this.c.store.pinSetsOf(msg.agents as string[]).filter(r => r.seq > (known.get(r.device) ?? -1)).slice(0, MAX_RECORDS_PER_REPLY).map(r => r.bytes)
      await f.write({ type: 'records', records })
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.c.policy.offence(conn.remotePeer.toString(), err.message)
      f.abort(err?.message ?? 'error')
    }
  }
}
