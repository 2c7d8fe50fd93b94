import { randomBytes, randomInt } from 'node:crypto'
import { openStream } from '../p2p/host.js'
import { LRUCache } from 'lru-cache'
import { CID } from 'multiformats/cid'
import { walkDag } from '@hearth/blobstore'
import type { BlobStore } from '@hearth/blobstore'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import { mayServe } from '../blocks/access.js'
import { deviceOfPeer, peerOfDevice } from '../identity.js'
import { ProtocolError, framed } from '../p2p/framing.js'
import { RateLimit } from '../p2p/rate-limit.js'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import type { TrustService } from '../trust/service.js'
import { ANSWER_FRAME_BYTES, NEUTRAL, NONCE_BYTES, PASSING, PROOFS_PROTOCOL, REQUEST_FRAME_BYTES, judgeAnswer, parseChallenge, proofDigest } from './proof-protocol.js'
import type { Challenge, ProofResult } from './proof-protocol.js'

const TIMEOUT_MS = 10_000
/** challenges one pass starts, and how many run at once */
const MAX_PER_PASS = 512
const CONCURRENCY = 4
/** levels a challenger that holds only the root CID walks down */
const MAX_WALK = 8
/**
 * holder side: the challenges a peer may send in a window (32 in 32 s, one a
 * second on average); a device of this node's own agent (which proves every
 * root its household holds) gets more than other agents' nodes (256 in 16 s).
 * The challenger keeps to the same numbers per holder in one pass.
 */
const BUCKET_CAPACITY = 32
const BUCKET_REFILL_PER_S = 1
const OWN_BUCKET_CAPACITY = 256
const OWN_BUCKET_REFILL_PER_S = 16
/** peers whose throttled challenges are counted towards a strike */
const THROTTLED_TRACKED = 4096
/** a block-mode answer costs the holder a block on the wire */
const BLOCK_WEIGHT = 4
/** every so many throttled challenges cost the flooding peer a strike */
const THROTTLED_PER_STRIKE = 16
const MAX_RECORDS = 50_000

export interface ProofRecord {
  device: string
  root: string
  /** when the last challenge that said something (not `busy`) was answered */
  at: number
  result: ProofResult
  /** when the holder last passed */
  passedAt?: number
  /** when the replication pass last asked for this pair */
  watchedAt: number
}

export interface ProofStats {
  /** challenges this node sent, by result */
  sent: Record<ProofResult, number>
  /** challenges this node answered, by answer */
  answered: { ok: number, missing: number, refused: number, busy: number, invalid: number }
}

export interface ProofServiceInit {
  /** how often each (holder, root) pair is challenged, ms */
  intervalMs: number
  /**
   * a pair no longer watched (its holder stopped claiming the root) is
   * forgotten after this long, ms: long enough that a holder that failed and
   * let its copy go is not chosen again for that root at once, short enough
   * that a holder which let a copy go in the ordinary way, while a challenge
   * was on its way, is not held to it
   */
  forgetMs: number
}

/**
 * Holding proofs, both sides. As a holder it answers challenges on blocks of
 * the roots it holds, for peers that may read them, at a bounded rate per
 * peer. As a challenger it is given, each replication pass, the (holder,
 * root) pairs this node counts toward a target (its own roots' holders, and
 * the co-holders of replicas it holds), challenges each pair at most once per
 * interval, a bounded number per pass, and keeps the last result per pair.
 * A pair whose last result is a failure stops counting as a confirmed copy
 * (see the manager), and is reported in this node's signed pin set so the
 * nodes that would repair it learn of it.
 */
export class ProofService {
  readonly stats: ProofStats = {
    sent: { ok: 0, wrong: 0, missing: 0, refused: 0, unreachable: 0, malformed: 0, busy: 0 },
    answered: { ok: 0, missing: 0, refused: 0, busy: 0, invalid: 0 }
  }

  /** roots this node was challenged on and could not produce a block of: the manager checks them */
  readonly suspect = new Set<string>()
  /** called when a round of challenges ends, so views can count what it proved */
  onRound?: () => void
  private readonly records = new Map<string, ProofRecord>()
  /** the last challenge this node answered per root, as a holder */
  private readonly answers = new LRUCache<string, { at: number, device: string, answer: string }>({ max: MAX_RECORDS })
  private readonly buckets = new RateLimit({ points: BUCKET_CAPACITY, perSeconds: BUCKET_CAPACITY / BUCKET_REFILL_PER_S })
  private readonly ownBuckets = new RateLimit({ points: OWN_BUCKET_CAPACITY, perSeconds: OWN_BUCKET_CAPACITY / OWN_BUCKET_REFILL_PER_S })
  private readonly throttled = new LRUCache<string, number>({ max: THROTTLED_TRACKED })
  private readonly intervalMs: number
  private readonly forgetMs: number
  private checking?: Promise<void>
  private running = false

  constructor (init: ProofServiceInit, private readonly c: { host: HearthHost, blobs: BlobStore, trust: TrustService, policy: PeerPolicy, log: Logger }) {
    this.intervalMs = init.intervalMs
    this.forgetMs = init.forgetMs
  }

  async start (): Promise<void> {
    this.running = true
    // a gift may be proven to anyone: strangers share a few streams
    await this.c.policy.handle(PROOFS_PROTOCOL, (stream, conn) => { void this.serve(stream, conn) }, { maxInboundStreams: 4, maxOutboundStreams: CONCURRENCY * 2, runOnLimitedConnection: true, strangers: { maxStreams: 4 } })
  }

  async stop (): Promise<void> {
    this.running = false
    await this.checking?.catch(() => {})
    await this.c.host.unhandle(PROOFS_PROTOCOL).catch(() => {})
  }

  /** The last proof of `root` by `device`, if this node challenged it. */
  record (device: string, root: string): ProofRecord | undefined {
    return this.records.get(`${device} ${root}`)
  }

  /** The last challenge this node answered on `root` as a holder: when, for which device, and its answer. */
  answeredFor (root: string): { at: number, device: string, answer: string } | undefined {
    return this.answers.get(root)
  }

  /** Pairs whose last proof failed, newest first (for the pin set). */
  failing (limit: number): Array<{ device: string, root: string, at: number, result: string }> {
    return [...this.records.values()].filter(r => !PASSING.has(r.result)).sort((a, b) => b.at - a.at).slice(0, limit).map(r => ({ device: r.device, root: r.root, at: r.at, result: r.result }))
  }

  /**
   * Challenges the pairs that are due, in the background; a call while the
   * previous one still runs only records what is watched. A pair no longer
   * watched is forgotten after `forgetMs`.
   */
  check (pairs: Array<{ device: string, root: string }>): void {
    const now = Date.now()
    const due: Array<{ device: string, root: string, at: number }> = []
    for (const p of pairs) {
      const rec = this.records.get(`${p.device} ${p.root}`)
      if (rec != null) rec.watchedAt = now
      if (rec == null || now - rec.at >= this.intervalMs) due.push({ ...p, at: rec?.at ?? 0 })
    }
    for (const [key, r] of this.records) if (now - r.watchedAt > this.forgetMs) this.records.delete(key)
    if (this.checking != null || !this.running) return
    due.sort((a, b) => a.at - b.at)
    // no holder is asked for more in one round than its bucket for us holds
    const perHolder = new Map<string, number>()
    const batch = due.filter(p => {
      const n = perHolder.get(p.device) ?? 0
      if (n >= (this.isOwnDevice(p.device) ? OWN_BUCKET_CAPACITY : BUCKET_CAPACITY)) return false
      perHolder.set(p.device, n + 1)
      return true
    }).slice(0, MAX_PER_PASS)
    const started = batch.length
    this.checking = (async () => {
      const next = async (): Promise<void> => {
        for (let p = batch.shift(); p != null && this.running; p = batch.shift()) await this.prove(p.device, p.root)
      }
      await Promise.all(Array.from({ length: CONCURRENCY }, next))
    })().catch(err => { this.c.log.warn({ err: err?.message }, 'proof round failed') }).finally(() => {
      this.checking = undefined
      if (started > 0) this.onRound?.()
    })
  }

  private isOwnDevice (device: string): boolean {
    const agent = this.c.trust.agentId
    return agent != null && this.c.trust.graph.agentOfDevice(device)?.agent === agent
  }

  /** Challenges one holder on one root now and records the result. */
  async prove (device: string, root: string): Promise<ProofResult> {
    const peer = peerOfDevice(device)
    const result = peer == null ? 'malformed' : await this.challenge(peer, root)
    this.stats.sent[result]++
    const key = `${device} ${root}`
    const now = Date.now()
    const prev = this.records.get(key)
    if (NEUTRAL.has(result)) {
      // a busy holder keeps its last verdict; try again next interval
      if (prev != null) prev.at = now
      return result
    }
    this.records.delete(key)
    this.records.set(key, { device, root, at: now, result, watchedAt: prev?.watchedAt ?? now, ...(PASSING.has(result) ? { passedAt: now } : prev?.passedAt != null ? { passedAt: prev.passedAt } : {}) })
    if (this.records.size > MAX_RECORDS) this.records.delete(this.records.keys().next().value!)
    if (!PASSING.has(result)) this.c.log.warn({ holder: device, root, result }, 'holder failed a holding proof')
    return result
  }

  /**
   * One proof: a random block of the DAG. With the block's bytes at hand the
   * answer is a keyed digest; without them, the block itself, walking down
   * from the root when this node holds nothing of the DAG.
   */
  async challenge (peer: PeerId, root: string): Promise<ProofResult> {
    const local = await this.pickLocal(root)
    if (local?.bytes != null) return (await this.ask(peer, { root, cid: local.cid, mode: 'digest', nonce: randomBytes(NONCE_BYTES) }, local.bytes)).result
    let cid = local?.cid ?? root
    for (let depth = 0; depth < MAX_WALK; depth++) {
      const { result, bytes } = await this.ask(peer, { root, cid, mode: 'block', nonce: randomBytes(NONCE_BYTES) })
      if (result !== 'ok' || bytes == null) return result
      const parsed = CID.parse(cid)
      if (parsed.code !== 0x70) return 'ok'
      const children: string[] = []
      try {
        for await (const b of walkDag(c => c.equals(parsed) ? bytes : undefined, parsed)) if (b.bytes == null) children.push(b.cid.toString())
      } catch {
        return 'wrong' // it hashes right but is no UnixFS node: not a block of a DAG we would accept
      }
      if (children.length === 0) return 'ok'
      cid = children[randomInt(children.length)]
    }
    return 'ok'
  }

  /** A random block of `root` this node holds, with its bytes when they read back intact. */
  private async pickLocal (root: string): Promise<{ cid: string, bytes?: Uint8Array } | undefined> {
    if (!await this.c.blobs.has(root).catch(() => false)) return undefined
    const members: string[] = []
    for await (const b of this.c.blobs.blocksOf(root)) members.push(b.cid.toString())
    if (members.length === 0) return undefined
    const cid = members[randomInt(members.length)]
    try {
      return { cid, bytes: await this.c.blobs.getBlock(cid) }
    } catch {
      return { cid }
    }
  }

  private async ask (peer: PeerId, challenge: Challenge, expected?: Uint8Array): Promise<{ result: ProofResult, bytes?: Uint8Array }> {
    let stream: Stream
    try {
      stream = await openStream(this.c.host, peer, PROOFS_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS), runOnLimitedConnection: true })
    } catch (err: any) {
      this.c.log.debug({ peer: peer.toString(), err: err?.message }, 'could not reach a holder to challenge it')
      return { result: 'unreachable' }
    }
    const f = framed(stream, { maxBytes: ANSWER_FRAME_BYTES, timeoutMs: TIMEOUT_MS, maxBufferBytes: ANSWER_FRAME_BYTES + 1024, guard: this.c.policy.guard(peer, { asked: true }) })
    try {
      await f.write({ type: 'challenge', ...challenge })
      const answer = await f.read()
      await f.close()
      const judged = judgeAnswer(challenge, answer, expected)
      if (judged.result === 'malformed') this.c.policy.offence(peer.toString(), 'malformed proof answer')
      return judged
    } catch (err: any) {
      f.abort(err?.message ?? 'error')
      if (err instanceof ProtocolError) {
        this.c.policy.offence(peer.toString(), err.message)
        return { result: 'malformed' }
      }
      return { result: 'unreachable' }
    }
  }

  private async serve (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    const f = framed(stream, { maxBytes: REQUEST_FRAME_BYTES, timeoutMs: TIMEOUT_MS, guard: this.c.policy.guard(peer) })
    try {
      const challenge = parseChallenge(await f.read())
      const device = deviceOfPeer(conn.remotePeer)
      const buckets = device != null && this.isOwnDevice(device) ? this.ownBuckets : this.buckets
      const allowed = await buckets.take(peer, challenge.mode === 'block' ? BLOCK_WEIGHT : 1)
      if (!allowed.ok) {
        this.stats.answered.busy++
        const n = (this.throttled.get(peer) ?? 0) + 1
        this.throttled.set(peer, n % THROTTLED_PER_STRIKE)
        if (n >= THROTTLED_PER_STRIKE) this.c.policy.offence(peer, 'flooded holding-proof challenges')
        await f.write({ type: 'busy', retry_ms: Math.max(1000, allowed.retryMs) })
        await f.close()
        return
      }
      if (device == null || !await mayServe(this.c.blobs, this.c.trust, device, challenge.root)) {
        this.stats.answered.refused++
        await f.write({ type: 'refused' })
        await f.close()
        return
      }
      const bytes = await this.blockOf(challenge.root, challenge.cid)
      this.answers.set(challenge.root, { at: Date.now(), device, answer: bytes == null ? 'missing' : 'ok' })
      if (bytes == null) {
        this.stats.answered.missing++
        this.suspect.add(challenge.root)
        this.c.log.warn({ root: challenge.root, block: challenge.cid, challenger: peer }, 'challenged on a block this node cannot read')
        await f.write({ type: 'missing' })
      } else {
        this.stats.answered.ok++
        await f.write(challenge.mode === 'digest'
          ? { type: 'digest', digest: proofDigest(challenge.nonce, challenge.root, challenge.cid, bytes) }
          : { type: 'block', bytes })
      }
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) {
        this.stats.answered.invalid++
        this.c.policy.offence(peer, err.message)
        this.c.log.debug({ peer, reason: err.message }, 'closed a proof stream')
      }
      f.abort(err?.message ?? 'error')
    }
  }

  /**
   * The block's bytes if it belongs to the root's DAG here and reads back
   * intact, and no block of the root is known bad: a copy with a quarantined
   * block is not a copy to count on, whichever block was asked for, until it
   * is mended.
   */
  private async blockOf (root: string, cid: string): Promise<Uint8Array | undefined> {
    if ((await this.c.blobs.head(root).catch(() => undefined))?.quarantinedBlocks !== 0) return undefined
    let member = false
    for await (const b of this.c.blobs.blocksOf(root)) if (b.cid.toString() === cid) { member = true; break }
    if (!member) return undefined
    try {
      return await this.c.blobs.getBlock(cid)
    } catch {
      return undefined
    }
  }
}
