import type { CID } from 'multiformats/cid'
import { openStream } from '../p2p/host.js'
import type { PeerId } from '@libp2p/interface'
import { ProtocolError, framed, isRecord } from '../p2p/framing.js'
import type { HearthHost } from '../p2p/host.js'
import type { PeerPolicy } from '../p2p/peer-policy.js'
import { BLOCKS_PROTOCOL, FRAME_BYTES, TIMEOUT_MS } from './protocol.js'
import type { BlockExchangeStats } from './protocol.js'

export interface WantComponents {
  host: HearthHost
  policy: PeerPolicy
  stats: BlockExchangeStats
  /** HEARTH_RELAY_TRANSFERS=limited: blocks may travel over a relayed connection, within the relay's limits */
  overRelays?: boolean
}

export interface WantResult {
  /** what was asked and did not arrive */
  unreceived: CID[]
  /** the provider said it lacks some, or refused */
  lacking: boolean
}

/**
 * One `want` on `/hearth/blocks/1.0.0`: asks `peer` for `cids` of `root` and
 * hands each block to `take` as it arrives, in the order the provider sends
 * them. `take` checks the bytes against the CID (a store's putBlock does);
 * when it throws ERR_BLOCK_VERIFICATION the provider is struck hard and the
 * want ends with a ProtocolError. Any error carries `unreceived`.
 */
export async function want (c: WantComponents, peer: PeerId, root: CID, cids: CID[], take: (cid: CID, bytes: Uint8Array) => Promise<void> | void): Promise<WantResult> {
  const stream = await openStream(c.host, peer, BLOCKS_PROTOCOL, { signal: AbortSignal.timeout(TIMEOUT_MS), runOnLimitedConnection: c.overRelays === true })
  // every asked block may be in flight at once: allow for all of them unread
  const f = framed(stream, { maxBytes: FRAME_BYTES, timeoutMs: TIMEOUT_MS, maxBufferBytes: cids.length * FRAME_BYTES + 64 * 1024, guard: c.policy.guard(peer, { asked: true }) })
  const asked = new Map(cids.map(x => [x.toString(), x]))
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
        await take(cid, msg.bytes)
      } catch (err: any) {
        if (err?.code === 'ERR_BLOCK_VERIFICATION') {
          c.stats.corrupt++
          c.policy.offence(peer.toString(), 'sent a corrupt block', 5)
          throw new ProtocolError('corrupt block')
        }
        throw err
      }
      asked.delete(msg.cid)
      c.stats.blocksReceived++
      c.stats.bytesReceived += msg.bytes.length
    }
    await f.close()
  } catch (err: any) {
    if (err instanceof ProtocolError) c.policy.offence(peer.toString(), err.message)
    f.abort(err?.message ?? 'error')
    throw Object.assign(err, { unreceived: [...asked.values()] })
  }
  return { unreceived: [...asked.values()], lacking }
}
