import { CarWriter } from '@ipld/car/writer'
import { cidToString } from './cids.js'
import { walkDag } from './dag-reader.js'
import type { GetBlock } from './dag-reader.js'
import type { CID } from 'multiformats/cid'

/**
 * A CARv1 stream of the DAG under `root`: header, then each distinct block
 * once, parents before children. The writer waits for the consumer, so at
 * most one block is buffered.
 */
export async function * carStream (get: GetBlock, root: CID): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create([root])
  let failure: unknown
  let stop = false
  const producer = (async () => {
    try {
      const seen = new Set<string>()
      for await (const b of walkDag(async c => await get(c), root)) {
        if (stop) return
        const key = cidToString(b.cid)
        if (seen.has(key)) continue
        seen.add(key)
        if (b.bytes == null) continue
        await writer.put({ cid: b.cid, bytes: b.bytes })
      }
    } catch (err) {
      failure = err
    } finally {
      await writer.close().catch(() => {})
    }
  })()
  try {
    for await (const chunk of out) {
      yield chunk
    }
    await producer
    if (failure !== undefined) throw failure
  } finally {
    stop = true
  }
}
