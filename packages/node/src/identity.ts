import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, Ed25519PublicKey, PeerId } from '@libp2p/interface'
import type { KeyPair } from '@hearth/trust'

/**
 * The device key as libp2p sees it. The raw form libp2p accepts is seed ||
 * public key; passing both spares it a second, slow key derivation.
 */
export function libp2pPrivateKey (pair: KeyPair): Ed25519PrivateKey {
  const raw = new Uint8Array(64)
  raw.set(pair.secretKey, 0)
  raw.set(pair.publicKey, 32)
  return privateKeyFromRaw(raw) as Ed25519PrivateKey
}

/** The PeerId of a device: derived from its Ed25519 public key, so it never changes while the key file stays. */
export function peerIdOfKey (pair: KeyPair): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(pair.publicKey) as Ed25519PublicKey)
}
