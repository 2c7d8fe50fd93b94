import type { BlobStore, PinLayer } from '@hearth/blobstore'
import type { Logger } from '@hearth/trust'
import type { BlockExchange } from '../blocks/exchange.js'

/**
 * Looking after the replicas this node holds. A block the scrub or a read
 * found corrupt is quarantined by the store; it is fetched again from a peer
 * and the good bytes take its place. A replica whose blocks are gone from the
 * database (found when a challenge asked for one) cannot be mended in place:
 * it is let go and, when this node is chosen again, fetched whole.
 */
export class ReplicaCare {
  constructor (private readonly c: { blobs: BlobStore, blocks: BlockExchange, log: Logger }) {}

  async quarantined (cid: string): Promise<boolean> {
    const head = await this.c.blobs.head(cid).catch(() => undefined)
    return head != null && head.quarantinedBlocks > 0
  }

  /**
   * Fetches a replica's quarantined blocks again (the store takes good bytes
   * in place of bad ones). One bad block says the others may be bad too (a
   * disk, a restore, a hand in the database): every block of the root is read
   * back first, so the ones the scrub has not reached yet are quarantined and
   * fetched in the same pass, rather than found one challenge at a time.
   */
  async heal (cid: string, owner: string, layer: PinLayer): Promise<boolean> {
    try {
      await this.checkAll(cid)
      await this.c.blocks.fetch(cid, { layer, owner })
      this.c.log.info({ root: cid, owner, layer }, 'healed a replica\'s corrupt blocks from a peer')
      return !await this.quarantined(cid)
    } catch (err: any) {
      this.c.log.warn({ root: cid, owner, layer, err: err?.code ?? err?.message }, 'could not heal a replica\'s corrupt blocks')
      return false
    }
  }

  /** Reads every block of `cid` back through the store's verified read, which quarantines one that fails */
  private async checkAll (cid: string): Promise<number> {
    let bad = 0
    let n = 0
    for await (const b of this.c.blobs.blocksOf(cid)) {
      try {
        await this.c.blobs.getBlock(b.cid)
      } catch {
        // quarantined now, or gone: the fetch below brings it either way
        bad++
      }
      // other work runs between blocks: a large blob is a second of hashing
      if (++n % 16 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    return bad
  }

  /** Every block of the blob is still stored and none is quarantined. */
  async intact (cid: string): Promise<boolean> {
    try {
      const head = await this.c.blobs.head(cid)
      if (head.quarantinedBlocks > 0) return false
      let n = 0
      for await (const _ of this.c.blobs.blocksOf(cid)) n++
      return n === head.blocks
    } catch {
      return false
    }
  }

  async dropDamaged (cid: string, owner: string, layer: PinLayer): Promise<void> {
    this.c.log.warn({ root: cid, owner, layer }, 'this replica lost blocks: letting it go so a sound copy is made')
    await this.c.blobs.unpin(cid, { layer, owner }).catch(() => {})
    await this.removeIfUnpinned(cid)
  }

  /** A broken blob no pin needs any more is removed, so it is fetched whole next time. */
  async removeIfUnpinned (cid: string): Promise<void> {
    if ((await this.c.blobs.pins({ cid }).catch(() => [1])).length === 0) await this.c.blobs.remove(cid).catch(() => {})
  }
}
