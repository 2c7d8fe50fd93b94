import type { BlobStore } from '@hearth/blobstore'
import type { TrustService } from '../trust/service.js'
import { agentsLinked } from '../trust/links.js'

/**
 * Whether the device behind a peer may fetch a root from this node. A hash
 * alone grants nothing: the root must be pinned here, and for one of its pins
 * the peer's agent must be the pin's owner (a pin without an owner belongs to
 * this node's agent), or the owner and the peer's agent must be linked by a
 * storage grant (either way) or a relationship, or the pin must be a `gift`
 * (content hosted for the commons).
 */
export async function mayServe (store: BlobStore, trust: TrustService, peerDeviceId: string, root: string): Promise<boolean> {
  let pins
  try {
    pins = await store.pins({ cid: root })
  } catch {
    return false
  }
  if (pins.length === 0) return false
  if (pins.some(p => p.layer === 'gift')) return true
  const peerAgent = trust.graph.agentOfDevice(peerDeviceId)?.agent
  if (peerAgent == null) return false
  const self = trust.agentId
  for (const pin of pins) {
    const owner = pin.owner ?? self
    if (owner == null) continue
    if (agentsLinked(trust.graph, owner, peerAgent)) return true
  }
  return false
}
