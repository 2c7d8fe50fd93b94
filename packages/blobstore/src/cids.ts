import { LRUCache } from 'lru-cache'
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import { BLAKE3_CODE, DAG_PB_CODE, MAX_CID_STRING_LENGTH, RAW_CODE, SHA2_256_CODE } from './constants.js'
import { InvalidCidError, UnsupportedCodecError, UnsupportedHashError } from './errors.js'

export type CidInput = CID | string

/**
 * Parses and checks a CID: any multibase string or a CID object, CIDv0 or v1,
 * raw or dag-pb codec, blake3-256 or sha2-256 with a 32-byte digest. Returns
 * the CIDv1 form (CIDv0 is dag-pb/sha2-256 and converts losslessly).
 */
export function parseCid (input: unknown): CID {
  if (typeof input === 'string') {
    let cid = parsed.get(input)
    if (cid === undefined) {
      cid = checkCid(input)
      // the same few CIDs are asked for over and over (an HTTP GET parses its CID twice)
      parsed.set(input, cid)
    }
    return cid
  }
  return checkCid(input)
}

/** Recently parsed strings (CIDs are immutable, so sharing them is safe) */
const parsed = new LRUCache<string, CID>({ max: 1024 })

function checkCid (input: unknown): CID {
  let cid: CID | null
  if (typeof input === 'string') {
    if (input.length === 0 || input.length > MAX_CID_STRING_LENGTH) throw new InvalidCidError('CID string has a bad length')
    try {
      cid = CID.parse(input)
    } catch {
      try {
        // accept any multibase the CID parser knows only through its prefix; be explicit for base32 upper case
        cid = CID.parse(input.toLowerCase(), base32)
      } catch {
        throw new InvalidCidError('Malformed CID string')
      }
    }
  } else {
    cid = CID.asCID(input)
    if (cid == null) throw new InvalidCidError('Not a CID')
  }
  if (cid.code !== RAW_CODE && cid.code !== DAG_PB_CODE) throw new UnsupportedCodecError(`Unsupported codec 0x${cid.code.toString(16)}`)
  if (cid.multihash.code !== BLAKE3_CODE && cid.multihash.code !== SHA2_256_CODE) throw new UnsupportedHashError(`Unsupported hash 0x${cid.multihash.code.toString(16)}`)
  if (cid.multihash.size !== 32) throw new InvalidCidError('Digest must be 32 bytes')
  return cid.version === 0 ? cid.toV1() : cid
}

/** Canonical string form: CIDv1 base32 */
export function cidToString (cid: CID): string {
  return cid.toV1().toString(base32)
}

/** Database key: the CIDv1 bytes */
export function cidKey (cid: CID): Uint8Array {
  return cid.toV1().bytes
}

export function cidFromKey (key: Uint8Array): CID {
  return CID.decode(key)
}
