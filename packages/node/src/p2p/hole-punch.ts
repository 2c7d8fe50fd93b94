import { createServer, isIP } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import { framed, ProtocolError } from './framing.js'
import type { HearthHost } from './host.js'
import type { PeerPolicy } from './peer-policy.js'
import type { ReachabilityTracker } from './reachability.js'
import { internals } from './internals.js'
import type { Upgrader } from './internals.js'
import { isRelayed } from '../status.js'

export const PUNCH_PROTOCOL = '/hearth/punch/1.0.0'

/** tries per relayed connection, as DCUtR makes */
const ATTEMPTS = 3
/** one try: the exchange and the simultaneous dial */
const ATTEMPT_TIMEOUT_MS = 8000
const FRAME_BYTES = 512
/** a relayed connection that came up is punched after identify had a moment to run */
const START_DELAY_MS = 500
/** a peer whose punches all failed is not tried again for this long (a NAT that maps each destination apart stays so) */
const FAILED_BACKOFF_MS = 10 * 60_000

export interface HolePunchStats {
  /** simultaneous dials tried */
  attempts: number
  /** relayed connections that became direct */
  successes: number
  /** relayed connections that stayed relayed after every try, by the reason of the last */
  failures: Record<string, number>
  last: { peer: string, at: string, result: 'direct' | 'failed', reason?: string, ms: number } | null
}

interface Offer { ip: string, port: number }

function parseOffer (msg: unknown): Offer {
  const m = msg as Record<string, unknown> | null
  if (m == null || m.type !== 'connect' || typeof m.ip !== 'string' || isIP(m.ip) === 0 || !Number.isSafeInteger(m.port) || (m.port as number) < 1 || (m.port as number) > 65535) {
    throw new ProtocolError('a hole-punch offer needs an IP and a port')
  }
  return { ip: m.ip, port: m.port as number }
}

/** A local TCP port nothing uses now: the dial that punches leaves from it */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '0.0.0.0', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => { resolve(port) })
    })
  })
}

class PunchFailed extends Error {
  constructor (readonly reason: string) { super(reason) }
}

/**
 * Turns a relayed connection into a direct one by TCP simultaneous open,
 * following DCUtR's exchange (connect, connect, sync, a dial from each side
 * half a round trip apart) on `/hearth/punch/1.0.0`.
 *
 * Why not @libp2p/dcutr: on Node.js a TCP dial cannot leave from the
 * listening port (no SO_REUSEPORT for connect), so the addresses DCUtR
 * exchanges (listen ports, and identify drops observed TCP ones) are never
 * the ones a router mapped, and its punches cannot meet (js-libp2p #2620;
 * the libp2p hole-punch interop marks js over TCP as failing). Here each side
 * instead picks a free local port, tells the other the public IP peers saw it
 * at plus that port, and dials from exactly that port (libp2p's own TCP
 * transport passes `localPort` to the socket; the dial goes to the transport
 * directly, as libp2p's dial queue keeps none of a caller's transport
 * options). A router that keeps a
 * connection's source port (Linux MASQUERADE, most home routers) maps it to
 * the same public port, so the two SYNs cross and open one connection; one
 * that picks a new port for every destination (a symmetric NAT) cannot be
 * punched this way, and the connection stays relayed.
 *
 * The side the relayed connection came in to starts (as in DCUtR) and then
 * acts as the libp2p listener (`initiator: false`), so the one TCP
 * connection both dials made gets one initiator and one responder.
 */
export class HolePuncher {
  readonly stats: HolePunchStats = { attempts: 0, successes: 0, failures: {}, last: null }
  private readonly running = new Set<string>()
  private readonly failedUntil = new Map<string, number>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private stopped = false

  constructor (private readonly c: { host: HearthHost, policy: PeerPolicy, reach: ReachabilityTracker, log: Logger }) {}

  async start (): Promise<void> {
    await this.c.policy.handle(PUNCH_PROTOCOL, (stream, conn) => { void this.answer(stream, conn) }, { maxInboundStreams: 1, maxOutboundStreams: 1, runOnLimitedConnection: true, strangers: false })
    this.c.host.addEventListener('connection:open', this.onConnection)
  }

  stop (): void {
    this.stopped = true
    this.c.host.removeEventListener('connection:open', this.onConnection)
    for (const t of this.timers) clearTimeout(t)
  }

  private readonly onConnection = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    if (!isRelayed(conn) || conn.direction !== 'inbound') return
    const t = setTimeout(() => {
      this.timers.delete(t)
      void this.punch(conn)
    }, START_DELAY_MS)
    t.unref?.()
    this.timers.add(t)
  }

  /** As the side the relayed connection came in to: offers, waits for the answer, sends sync, dials half a round trip later */
  async punch (relayed: Connection): Promise<boolean> {
    const peer = relayed.remotePeer.toString()
    if (this.stopped || relayed.status !== 'open' || this.running.has(peer) || this.c.policy.classOf(relayed.remotePeer) === 'stranger') return false
    if ((this.failedUntil.get(peer) ?? 0) > Date.now()) return false
    if (this.c.host.getConnections(relayed.remotePeer).some(x => !isRelayed(x) && x.status === 'open')) return false
    this.running.add(peer)
    const started = Date.now()
    let reason = 'unknown'
    try {
      for (let i = 0; i < ATTEMPTS && !this.stopped && relayed.status === 'open'; i++) {
        try {
          await this.attemptAsStarter(relayed)
          this.succeeded(relayed, started)
          return true
        } catch (err: any) {
          reason = err instanceof PunchFailed ? err.reason : (err?.code ?? err?.name ?? 'error')
          this.c.log.debug({ peer, attempt: i + 1, err: err?.message }, 'hole punch attempt failed')
          if (err instanceof PunchFailed && err.reason === 'no_public_address') break
        }
      }
      this.failed(peer, reason, started)
      return false
    } finally {
      this.running.delete(peer)
    }
  }

  private async attemptAsStarter (relayed: Connection): Promise<void> {
    const ip = this.publicIp()
    const signal = AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)
    const stream = await relayed.newStream(PUNCH_PROTOCOL, { signal, runOnLimitedConnection: true })
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: ATTEMPT_TIMEOUT_MS, guard: this.c.policy.guard(relayed.remotePeer.toString(), { asked: true }) })
    try {
      const port = await freePort()
      const sentAt = Date.now()
      await f.write({ type: 'connect', ip, port })
      const theirs = parseOffer(await f.read())
      const rtt = Date.now() - sentAt
      await f.write({ type: 'sync' })
      await sleep(rtt / 2)
      this.stats.attempts++
      await this.dial(relayed, theirs, port, false, signal)
      await f.close().catch(() => {})
    } catch (err) {
      f.abort(err instanceof Error ? err.message : 'error')
      throw err
    }
  }

  /** As the side that dialled through the relay: answers the offer with its own, and dials as soon as sync arrives */
  private async answer (stream: Stream, relayed: Connection): Promise<void> {
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: ATTEMPT_TIMEOUT_MS, guard: this.c.policy.guard(relayed.remotePeer.toString()) })
    const started = Date.now()
    try {
      const theirs = parseOffer(await f.read())
      const ip = this.publicIp()
      const port = await freePort()
      await f.write({ type: 'connect', ip, port })
      const sync = await f.read() as { type?: unknown } | null
      if (sync?.type !== 'sync') throw new ProtocolError('expected sync')
      this.stats.attempts++
      await this.dial(relayed, theirs, port, true, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS))
      this.succeeded(relayed, started)
      await f.close().catch(() => {})
    } catch (err: any) {
      if (err instanceof ProtocolError) this.c.policy.offence(relayed.remotePeer.toString(), err.message)
      this.c.log.debug({ peer: relayed.remotePeer.toString(), err: err?.message }, 'answering a hole punch failed')
      f.abort(err?.message ?? 'error')
    }
  }

  private publicIp (): string {
    const ip = this.c.reach.observedIps()[0]
    if (ip == null) throw new PunchFailed('no_public_address')
    return ip
  }

  private async dial (relayed: Connection, to: Offer, localPort: number, initiator: boolean, signal: AbortSignal): Promise<void> {
    const family = isIP(to.ip) === 6 ? 'ip6' : 'ip4'
    const addr = multiaddr(`/${family}/${to.ip}/tcp/${to.port}/p2p/${relayed.remotePeer.toString()}`)
    const { transportManager, upgrader } = internals(this.c.host)
    const transport = transportManager.dialTransportForMultiaddr(addr)
    if (transport == null) throw new PunchFailed('no_transport')
    let conn: Connection
    try {
      // Straight to the TCP transport, past libp2p's dial queue (which keeps none of a caller's transport options):
      // it hands its options to net.connect, so the SYN leaves from the port we told the peer. Both dials end in one
      // TCP connection, which each side's transport calls outbound; the side that is not the initiator turns its
      // end inbound before the upgrade, so that one side negotiates as the listener in multistream-select, Noise
      // and yamux (which picks its stream ids from the connection's direction).
      const upgrade: Upgrader = initiator
        ? upgrader
        : { upgradeOutbound: async (maConn, opts) => { maConn.direction = 'inbound'; return await upgrader.upgradeOutbound(maConn, { ...opts, initiator: false }) } }
      // the transport keeps the dial's signal for the connection's life: one that stops mattering once it is open
      const dialing = new AbortController()
      const stop = (): void => { dialing.abort(signal.reason) }
      signal.addEventListener('abort', stop, { once: true })
      try {
        conn = await transport.dial(addr, { signal: dialing.signal, localPort, upgrader: upgrade })
      } finally {
        signal.removeEventListener('abort', stop)
      }
    } catch (err: any) {
      this.c.log.debug({ peer: relayed.remotePeer.toString(), addr: addr.toString(), localPort, initiator, err: err?.errors?.map((e: any) => e.message) ?? err?.message }, 'hole-punch dial failed')
      throw new PunchFailed(signal.aborted ? 'timeout' : 'dial_failed')
    }
    if (isRelayed(conn)) throw new PunchFailed('relayed')
    this.c.reach.notePunched(conn)
  }

  private succeeded (relayed: Connection, started: number): void {
    const peer = relayed.remotePeer.toString()
    this.failedUntil.delete(peer)
    this.stats.successes++
    this.stats.last = { peer, at: new Date().toISOString(), result: 'direct', ms: Date.now() - started }
    this.c.log.info({ peer, ms: Date.now() - started }, 'hole punched: a relayed connection became direct')
    // what ran over the relay moves to the direct connection as it opens streams again
    setTimeout(() => { relayed.close().catch(() => {}) }, 1000).unref?.()
  }

  private failed (peer: string, reason: string, started: number): void {
    this.failedUntil.set(peer, Date.now() + FAILED_BACKOFF_MS)
    if (this.failedUntil.size > 1024) this.failedUntil.delete(this.failedUntil.keys().next().value!)
    this.stats.failures[reason] = (this.stats.failures[reason] ?? 0) + 1
    this.stats.last = { peer, at: new Date().toISOString(), result: 'failed', reason, ms: Date.now() - started }
    this.c.log.info({ peer, reason }, 'hole punching failed: the connection stays relayed')
  }
}
