import { CHUNK_SIZE, RAW_CODE } from './constants.js'
import type { Block } from './dag-builder.js'

/**
 * The blocks an add has built and not yet written. Leaves reach the sink as
 * views of the source's chunks or of the builder's reused buffer (the builder
 * runs with `transientLeaves`), so they are copied here, in the same tick as
 * they were hashed: what is written is what was verified, whatever the source
 * does with its buffers afterwards. The copies go to slabs that are reused
 * once a batch is written (SQLite copies bound bytes), so an add of any size
 * allocates one batch of memory and never the page faults of a fresh 1 MiB
 * buffer per leaf.
 */
export class BlockBatch {
  private readonly slabs: Uint8Array[] = []
  private slabsUsed = 0
  blocks: Block[] = []
  bytes = 0

  add (block: Block): void {
    let bytes = block.bytes
    if (block.cid.code === RAW_CODE && bytes.byteLength <= CHUNK_SIZE) {
      let slab = this.slabs[this.slabsUsed]
      if (slab == null) {
        // unzeroed: only the bytes copied in are ever read
        slab = new Uint8Array(Buffer.allocUnsafeSlow(CHUNK_SIZE).buffer, 0, CHUNK_SIZE)
        this.slabs.push(slab)
      }
      this.slabsUsed++
      slab.set(bytes)
      bytes = slab.subarray(0, bytes.byteLength)
    }
    this.blocks.push({ cid: block.cid, bytes })
    this.bytes += bytes.byteLength
  }

  /** Hands the batch over; the caller must write it before the next `add` */
  take (): Block[] {
    const blocks = this.blocks
    this.blocks = []
    this.bytes = 0
    this.slabsUsed = 0
    return blocks
  }
}
