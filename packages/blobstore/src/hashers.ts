import { createHash as createNodeHash } from 'node:crypto'
import { hash as blake3Hash } from 'blake3'
import { from } from 'multiformats/hashes/hasher'
import { BLAKE3_CODE, SHA2_256_CODE } from './constants.js'
import { BlockTooLargeError, BlockVerificationError, UnsupportedHashError } from './errors.js'
import type { CID } from 'multiformats/cid'
import type { MultihashHasher } from 'multiformats/hashes/interface'

function toPlain (buf: Uint8Array): Uint8Array<ArrayBuffer> {
  // The native addon returns Buffers; CIDs and digests compare as plain bytes
  return new Uint8Array(buf.buffer as ArrayBuffer, buf.byteOffset, buf.byteLength)
}

/** BLAKE3-256 as a multiformats hasher (multihash code 0x1e), backed by the native addon */
export const blake3: MultihashHasher<typeof BLAKE3_CODE> = from({
  name: 'blake3',
  code: BLAKE3_CODE,
  encode: (input: Uint8Array) => toPlain(blake3Hash(input))
})

/** SHA2-256 as a synchronous multiformats hasher (for IPFS interop and the importer comparison) */
export const sha256: MultihashHasher<typeof SHA2_256_CODE> = from({
  name: 'sha2-256',
  code: SHA2_256_CODE,
  encode: (input: Uint8Array) => toPlain(createNodeHash('sha256').update(input).digest())
})

export function hasherFor (code: number): MultihashHasher {
  if (code === BLAKE3_CODE) return blake3
  if (code === SHA2_256_CODE) return sha256
  throw new UnsupportedHashError(`Unsupported multihash code 0x${code.toString(16)}`)
}

/** Raw 32-byte digest of `bytes` under the hash function `code` */
export function digestOf (code: number, bytes: Uint8Array): Uint8Array {
  const d = hasherFor(code).digest(bytes)
  if (d instanceof Promise) throw new UnsupportedHashError('async hashers are not supported')
  return d.digest
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** true when `bytes` hash to `cid`'s multihash */
export function matchesCid (cid: CID, bytes: Uint8Array): boolean {
  const expected = cid.multihash.digest
  return equalBytes(digestOf(cid.multihash.code, bytes).subarray(0, expected.byteLength), expected) &&
    expected.byteLength === 32
}

/** Throws BlockVerificationError unless `bytes` hash to `cid` */
export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  if (!matchesCid(cid, bytes)) throw new BlockVerificationError(`Bytes do not hash to ${cid.toString()}`)
}

/**
 * Everything checked before a block is accepted from anywhere: a supported
 * CID, a bounded size, and bytes that hash to the CID.
 */
export function checkIncomingBlock (cid: CID, bytes: Uint8Array, maxBlockSize: number): void {
  if (!(bytes instanceof Uint8Array)) throw new BlockVerificationError('block bytes must be a Uint8Array')
  if (bytes.byteLength > maxBlockSize) throw new BlockTooLargeError(`block of ${bytes.byteLength} bytes exceeds ${maxBlockSize}`)
  verifyBlock(cid, bytes)
}
