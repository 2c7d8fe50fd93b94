import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const DOMAIN = 'hearth/v1/provide\0'
const SHA2_256 = 0x12
const RAW = 0x55

/**
 * The key a root is announced and looked up under on the private DHT: a
 * SHA-256 multihash of the root's CID. js-libp2p's kad-dht sends a CID's
 * multihash as the key but its ADD_PROVIDER and GET_PROVIDERS handlers parse
 * the key as a whole CID, which only works when the multihash is SHA-256
 * (it then reads as a CIDv0). Hearth's roots are BLAKE3, so every provider
 * record was refused ("Invalid CID") and content routing found nobody; the
 * derived key works, and is the same on every node that knows the root.
 */
export function routingKey (root: CID): CID {
  const digest = createHash('sha256').update(DOMAIN).update(root.bytes).digest()
  return CID.createV1(RAW, Digest.create(SHA2_256, digest))
}
