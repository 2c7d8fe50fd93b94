import { walkDag } from '@hearth/blobstore'
import type { BlobStore, Session } from '@hearth/blobstore'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '@hearth/trust'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import { FetchQueue } from './fetch-queue.js'
import { DAG_PB, FetchTimeoutError, NoProvidersError, PER_PEER_IN_FLIGHT, WANT_BATCH } from './protocol.js'
import { want } from './want.js'
import type { WantResult } from './want.js'
import type { BlockExchangeStats } from './protocol.js'

/**
 * The asking side of a fetch: workers (PER_PEER_IN_FLIGHT per provider) pull
 * batches from one queue and ask for them; each block is verified by the
 * session before it is stored, and a DAG node's children join the queue as
 * the node arrives, so the DAG is never walked again while it downloads.
 */
export class DagFetcher {
  constructor (private readonly c: { host: HearthHost, store: BlobStore, policy: PeerPolicy, stats: BlockExchangeStats, log: Logger, overRelays?: boolean }) {}

  /**
   * Fetches `missing` and whatever the DAG nodes among them reveal. `onBlock`
   * sees each block once it is verified and stored; if it throws, the fetch
   * stops and drain throws that error.
   */
  async drain (root: CID, session: Session, providers: PeerId[], missing: CID[], signal?: AbortSignal, onBlock?: (cid: CID, bytes: Uint8Array) => void): Promise<void> {
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
          result = await this.want(peer, root, batch, session, queue, onBlock)
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
    if (queue.error != null) throw queue.error
    if (signal?.aborted === true) throw signal.reason instanceof Error ? signal.reason : new FetchTimeoutError(`fetching ${key} took too long`)
    if (queue.size > 0) throw new NoProvidersError(`no provider could serve the rest of ${key} (${queue.size} blocks missing)`)
  }

  /**
   * Asks one provider for a batch; stores each block as it arrives (the
   * session verifies it first) and queues the children a new DAG node reveals.
   * Returns the CIDs that did not arrive and whether the provider said it lacks any.
   */
  private async want (peer: PeerId, root: CID, cids: CID[], session: Session, queue: FetchQueue, onBlock?: (cid: CID, bytes: Uint8Array) => void): Promise<WantResult> {
    return await want(this.c, peer, root, cids, async (cid, bytes) => {
      try {
        await session.putBlock(cid, bytes)
        onBlock?.(cid, bytes)
      } catch (err: any) {
        // the store refused it for a reason no other provider changes (its quota, a closed store), or the caller stopped the fetch
        if (err?.code !== 'ERR_BLOCK_VERIFICATION') queue.fail(err)
        throw err
      }
      if (cid.code === DAG_PB) queue.push(await this.unheldChildren(cid, bytes))
    })
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
