import { cidToString, parseCid } from './cids.js'
import { MAX_BLOCK_SIZE } from './constants.js'
import { BlockNotFoundError } from './errors.js'
import { checkIncomingBlock } from './hashers.js'
import type { BlockStore } from './index.js'
import type { CID } from 'multiformats/cid'

/** An in-memory BlockStore, for tests and as the reference for the compliance suite */
export class MemoryBlockStore implements BlockStore {
  private readonly blocks = new Map<string, Uint8Array>()

  async put (cid: CID, bytes: Uint8Array): Promise<void> {
    const c = parseCid(cid)
    checkIncomingBlock(c, bytes, MAX_BLOCK_SIZE)
    this.blocks.set(cidToString(c), bytes.slice())
  }

  async get (cid: CID): Promise<Uint8Array> {
    const bytes = this.blocks.get(cidToString(parseCid(cid)))
    if (bytes == null) throw new BlockNotFoundError()
    return bytes.slice()
  }

  async has (cid: CID): Promise<boolean> {
    return this.blocks.has(cidToString(parseCid(cid)))
  }

  async delete (cid: CID): Promise<void> {
    this.blocks.delete(cidToString(parseCid(cid)))
  }

  get size (): number {
    return this.blocks.size
  }
}
