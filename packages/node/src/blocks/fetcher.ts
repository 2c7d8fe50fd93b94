import { walkDag } from '@hearth/blobstore'
import type { BlobStore, Session } from '@hearth/blobstore'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import { ProtocolError, framed, isRecord } from '../p2p/framing.js'
import type { HearthHost } from '../p2p/host.js'
import type { PenaltyBox } from '../p2p/penalty-box.js'
import { FetchQueue } from './fetch-queue.js'
import { BLOCKS_PROTOCOL, DAG_PB, FRAME_BYTES, FetchTimeoutError, NoProvidersError, PER_PEER_IN_FLIGHT, TIMEOUT_MS, WANT_BATCH } from './protocol.js'
import type { BlockExchangeStats } from './protocol.js'

/**
 * The asking side of a fetch: workers (PER_PEER_IN_FLIGHT per provider) pull
 * batches from one queue and ask for them; each block is verified by the
 * session before it is stored, and a DAG node's children join the queue as
 * the node arrives, so the DAG is never walked again while it downloads.
 */
export class DagFetcher {
  constructor (private readonly c: { host: HearthHost, store: BlobStore, penalty: PenaltyBox, stats: BlockExchangeStats, log: Logger }) {}

  async drain (root: CID, session: Session, providers: PeerId[], missing: CID[], signal?: AbortSignal): Promise<void> {
    const key = root.toString()
    const queue = new FetchQueue(missing)
    const onAbort = (): void => { queue.stop() }
    signal?.addEventListener('abort', onAbort)
    const worker = async (peer: PeerId): Promise<void> => {
      for (;;) {
        const batch = await queue.take(WANT_BATCH)
        if (batch == null) return
        let result
        try {
          result = await this.want(peer, root, batch, session, queue)
        } catch (err: any) {
          queue.done(err?.unreceived ?? batch)
          this.c.log.debug({ peer: peer.toString(), err: err?.message }, 'provider failed')
          return
        }
        queue.done(result.unreceived)
        // a provider that lacks blocks, or sent none of a batch, cannot complete this DAG
        if (result.lacking || result.unreceived.length === batch.length) return
      }
    }
    try {
      await Promise.all(providers.flatMap(p => Array.from({ length: PER_PEER_IN_FLIGHT }, async () => { await worker(p) })))
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    if (signal?.aborted === true) throw new FetchTimeoutError(`fetching ${key} took too long`)
    if (queue.size > 0) throw new NoProvidersError(`no provider could serve the rest of ${key} (${queue.size} blocks missing)`)
  }

  /**
   * Asks one provider for a batch; stores each block as it arrives (the
   * session verifies it first) and queues the children a new DAG node reveals.
   * Returns the CIDs that did not arrive and whether the provider said it lacks any.
   */
  private async want (peer: PeerId, root: CID, cids: CID[], session: Session, queue: FetchQueue): Promise<{ unreceived: CID[], lacking: boolean }> {
    const stream = await this.c.host.dialProtocol(peer, BLOCKS_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    // every asked block may be in flight at once: allow for all of them unread
    const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS, maxBufferBytes: cids.length * FRAME_BYTES + 64 * 1024 })
    const asked = new Map(cids.map(c => [c.toString(), c]))
    let lacking = false
    try {
      await f.write({ type: 'want', root: root.toString(), cids: [...asked.keys()] })
      for (;;) {
        const msg = await f.read()
        if (!isRecord(msg)) throw new ProtocolError('bad reply')
        if (msg.type === 'end' || msg.type === 'refused') { lacking ||= msg.type === 'refused'; break }
        if (msg.type === 'dont-have') { lacking = true; continue }
        if (msg.type !== 'block' || typeof msg.cid !== 'string' || !asked.has(msg.cid) || !(msg.bytes instanceof Uint8Array)) throw new ProtocolError('unasked or malformed block')
        const cid = asked.get(msg.cid)!
        try {
          await session.putBlock(cid, msg.bytes)
        } catch (err: any) {
          if (err?.code === 'ERR_BLOCK_VERIFICATION') {
            this.c.stats.corrupt++
            this.c.penalty.strike(peer.toString(), 'sent a corrupt block', 5)
            throw new ProtocolError('corrupt block')
          }
          throw err
        }
        asked.delete(msg.cid)
        this.c.stats.blocksReceived++
        this.c.stats.bytesReceived += msg.bytes.length
        if (cid.code === DAG_PB) queue.push(await this.unheldChildren(cid, msg.bytes))
      }
      await f.close()
    } catch (err: any) {
      if (err instanceof ProtocolError) this.c.penalty.strike(peer.toString(), err.message)
      f.abort(err?.message ?? 'error')
      throw Object.assign(err, { unreceived: [...asked.values()] })
    }
    return { unreceived: [...asked.values()], lacking }
  }

  /** The links of a (verified) DAG node that this store does not hold yet. */
  private async unheldChildren (cid: CID, bytes: Uint8Array): Promise<CID[]> {
    const out: CID[] = []
    for await (const b of walkDag(c => c.equals(cid) ? bytes : undefined, cid)) {
      if (b.bytes == null && !await this.c.store.hasBlock(b.cid)) out.push(b.cid)
    }
    return out
  }
}
