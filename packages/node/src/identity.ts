import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, Ed25519PublicKey, PeerId } from '@libp2p/interface'
import { keyIdFromPublicKey, publicKeyFromKeyId } from '@hearth/trust'
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

/** The device id (its key id) behind a libp2p peer, when the peer's key is Ed25519. */
export function deviceOfPeer (peer: PeerId): string | undefined {
  const raw = peer.publicKey?.raw
  return raw != null && raw.length === 32 && peer.type === 'Ed25519' ? keyIdFromPublicKey(raw) : undefined
}

/** The PeerId a device's daemon has (the same Ed25519 key); undefined for a malformed id. */
export function peerOfDevice (device: string): PeerId | undefined {
  try {
    return peerIdFromPublicKey(publicKeyFromRaw(publicKeyFromKeyId(device)) as Ed25519PublicKey)
  } catch {
    return undefined
  }
}
