import type { PeerId } from '@libp2p/interface'
import type { HearthNode } from '../src/index.js'
import { decodeInvitation } from '../src/trust/invitation.js'

/**
 * Certifies `peer`'s key as a device of `node`'s agent (made first if the
 * node has none), as pairing would. The node then counts the peer as linked
 * and serves it every protocol: tests that play a misbehaving member use it,
 * since a stranger is refused those protocols before it can misbehave.
 */
export async function adoptPeer (node: HearthNode, peer: PeerId): Promise<void> {
  if (node.trust.agentId == null) await node.trust.initAgent()
  const { invitation } = node.trust.createInvite(node.peerId.toString(), [])
  const key = peer.publicKey?.raw
  if (key == null || key.length !== 32) throw new Error('an Ed25519 peer is needed')
  node.trust.acceptPairing(decodeInvitation(invitation).secret, key, { name: 'test peer' })
}
