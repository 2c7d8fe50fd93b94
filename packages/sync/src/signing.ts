import { createHash } from 'node:crypto'
import * as A from '@automerge/automerge'
import { keyIdFromPublicKey, publicKeyFromKeyId, signEd25519, verifyEd25519 } from '@hearth/trust'
import type { DeviceId, KeyPair } from '@hearth/trust'
import { MAX_VERIFIED_KEYS_CACHE } from './constants.js'
import type { DocumentAcl, Signer, Verifier, SignatureKind } from './index.js'

const enc = new TextEncoder()
const CHANGE_DOMAIN = enc.encode('hearth/v1/automerge-change\0')
const CUSTODIAL_DOMAIN = enc.encode('hearth/v1/automerge-change-custodial\0')
const HEADER_DOMAIN = enc.encode('hearth/v1/doc-header\0')

/**
 * The Automerge actor id of a device: the first 16 bytes of SHA-256 of its
 * public key, as hex. A change signed with kind `device` must carry this
 * actor, so one device's history can never be written under another's actor.
 */
export function actorIdFromDevice (device: DeviceId): string {
  return createHash('sha256').update(publicKeyFromKeyId(device)).digest().subarray(0, 16).toString('hex')
}

/**
 * What a change signature covers: a domain tag (one per kind), the 16 bytes
 * of the document id and the 32 bytes of the change hash. The document id
 * keeps a signed change from being replayed into another document.
 */
export function changeSigningMessage (kind: SignatureKind, docIdBytes: Uint8Array, hash: Uint8Array): Uint8Array {
  const domain = kind === 'custodial' ? CUSTODIAL_DOMAIN : CHANGE_DOMAIN
  const out = new Uint8Array(domain.length + docIdBytes.length + hash.length)
  out.set(domain, 0)
  out.set(docIdBytes, domain.length)
  out.set(hash, domain.length + docIdBytes.length)
  return out
}

export function headerSigningMessage (headerBytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_DOMAIN.length + headerBytes.length)
  out.set(HEADER_DOMAIN, 0)
  out.set(headerBytes, HEADER_DOMAIN.length)
  return out
}

/**
 * A signer over a device key pair, through the trust package's native
 * Ed25519: signing and verifying every change of thousands of documents is
 * on the sync hot path.
 */
export function createDeviceSigner (keyPair: KeyPair): Signer {
  return {
    deviceId: keyIdFromPublicKey(keyPair.publicKey),
    sign: (message: Uint8Array) => signEd25519(message, keyPair.secretKey)
  }
}

export interface Ed25519VerifierInit {
  /** who may write: the daemon passes `(device, acl) => graph.mayWrite(device, acl)` */
  mayWrite: (device: DeviceId, acl: { owner: string, writers: readonly string[] }) => boolean
  /** who may read; default: public documents, or {@link mayWrite} over owner, writers and readers */
  mayRead?: (device: DeviceId, acl: DocumentAcl) => boolean
}

/** A {@link Verifier}: strict Ed25519 (the trust graph's rules) over device key ids, ACL decisions delegated (to the trust graph). */
export function createEd25519Verifier (init: Ed25519VerifierInit): Verifier {
  const keys = new Map<string, Uint8Array | null>()
  const keyOf = (device: DeviceId): Uint8Array | null => {
    let key = keys.get(device)
    if (key === undefined) {
      try {
        key = publicKeyFromKeyId(device)
      } catch {
        key = null
      }
      if (keys.size >= MAX_VERIFIED_KEYS_CACHE) keys.delete(keys.keys().next().value as string)
      keys.set(device, key)
    }
    return key
  }
  return {
    verify (message, signature, device) {
      if (signature.length !== 64) return false
      const key = keyOf(device)
      return key != null && verifyEd25519(signature, message, key)
    },
    mayWrite: (device, acl) => {
      try {
        return init.mayWrite(device, acl)
      } catch {
        return false
      }
    },
    mayRead: (device, acl) => {
      try {
        if (init.mayRead != null) return init.mayRead(device, acl)
        return acl.public || init.mayWrite(device, { owner: acl.owner, writers: [...acl.writers, ...acl.readers] })
      } catch {
        return false
      }
    }
  }
}

/** mayRead with the default rule when a verifier does not define it */
export function mayRead (verifier: Verifier, device: DeviceId, acl: DocumentAcl): boolean {
  if (verifier.mayRead != null) return verifier.mayRead(device, acl)
  return acl.public || verifier.mayWrite(device, { owner: acl.owner, writers: [...acl.writers, ...acl.readers] })
}

export function hexToBytes (hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

export function bytesToHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/**
 * A sync state that starts from heads both sides are known to share (after a
 * snapshot was sent and accepted). Automerge persists exactly this — the
 * shared heads — as `0x43 | uLEB count | count × 32-byte hash`, so the
 * state is built through its own decoder.
 */
export function syncStateWithSharedHeads (heads: readonly string[]): A.SyncState {
  const parts: number[] = [0x43]
  let n = heads.length
  do {
    let b = n & 0x7f
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    parts.push(b)
  } while (n > 0)
  const out = new Uint8Array(parts.length + 32 * heads.length)
  out.set(parts, 0)
  heads.forEach((h, i) => out.set(hexToBytes(h), parts.length + 32 * i))
  return A.decodeSyncState(out)
}
