import { createHmac, timingSafeEqual } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { MAX_BLOCK_SIZE, matchesCid } from '@hearth/blobstore'
import { ProtocolError, isRecord } from '../p2p/framing.js'

/**
 * `/hearth/proofs/1.0.0`: a holder proves it still holds a root by answering a
 * challenge on one block of the root's DAG. One challenge per stream, dag-cbor
 * frames.
 *
 * Request: `{ type: 'challenge', root, cid, mode, nonce }` — `cid` names a
 * block of the DAG under `root`, `nonce` is 32 fresh random bytes.
 * - mode `digest`, for a challenger that holds the block: the answer is
 *   `{ type: 'digest', digest }`, HMAC-SHA256 keyed by the nonce over
 *   "hearth/v1/proof\0" root "\0" cid "\0" and the block's bytes. Only a node
 *   with the bytes can compute it, only a node with the bytes can check it,
 *   and the fresh nonce stops a holder from answering with a stored digest.
 *   32 bytes on the wire.
 * - mode `block`, for a challenger that knows the block's CID but not its
 *   bytes (it holds only the root and the link structure, or its own copy is
 *   damaged): the answer is `{ type: 'block', bytes }`, which the challenger
 *   hashes against the CID. Costs up to one block (≤ 2 MiB) on the wire, so
 *   it weighs more against the holder's rate limit. A challenger that holds
 *   nothing but the root CID walks down from the root this way, one
 *   challenge per level.
 *
 * Other answers: `{ type: 'missing' }` (the holder admits it lacks the block),
 * `{ type: 'refused' }` (the challenger may not read the root), and
 * `{ type: 'busy', retry_ms }` (the challenger exceeded the holder's rate).
 *
 * What a proof shows: that, within the answer's deadline, the holder could
 * read the block's bytes. A holder could still fetch a block from another
 * copy on demand; the deadline and the randomness of the block bound that,
 * they do not exclude it.
 */
export const PROOFS_PROTOCOL = '/hearth/proofs/1.0.0'
export const NONCE_BYTES = 32
export const DIGEST_BYTES = 32
/** a request is small; an answer carries at most one block */
export const REQUEST_FRAME_BYTES = 2048
export const ANSWER_FRAME_BYTES = MAX_BLOCK_SIZE + 1024
const MAX_CID_CHARS = 256
const DOMAIN = 'hearth/v1/proof\0'

export type ProofMode = 'digest' | 'block'

export interface Challenge {
  root: string
  cid: string
  mode: ProofMode
  nonce: Uint8Array
}

/**
 * What a challenge came to, from the challenger's side. `ok` is a pass;
 * `busy` says nothing either way; every other result is a failure.
 */
export type ProofResult = 'ok' | 'wrong' | 'missing' | 'refused' | 'unreachable' | 'malformed' | 'busy'

export const PASSING: ReadonlySet<ProofResult> = new Set(['ok'])
export const NEUTRAL: ReadonlySet<ProofResult> = new Set(['busy'])

/** A challenge that fails validation: the stream is closed and the sender struck (code ERR_PROTOCOL). */
export class InvalidChallengeError extends ProtocolError {
  override readonly name: string = 'InvalidChallengeError'
}

export function proofDigest (nonce: Uint8Array, root: string, cid: string, bytes: Uint8Array): Uint8Array {
  return createHmac('sha256', nonce).update(DOMAIN).update(root).update('\0').update(cid).update('\0').update(bytes).digest()
}

/** Validates a challenge as it arrives from a peer. */
export function parseChallenge (msg: unknown): Challenge {
  if (!isRecord(msg) || msg.type !== 'challenge') throw new InvalidChallengeError('not a challenge')
  const { root, cid, mode, nonce } = msg
  if (typeof root !== 'string' || root.length > MAX_CID_CHARS || typeof cid !== 'string' || cid.length > MAX_CID_CHARS) throw new InvalidChallengeError('bad root or block CID')
  if (mode !== 'digest' && mode !== 'block') throw new InvalidChallengeError('unknown proof mode')
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) throw new InvalidChallengeError(`the nonce must be ${NONCE_BYTES} bytes`)
  let rootCid: CID
  let blockCid: CID
  try {
    rootCid = CID.parse(root)
    blockCid = CID.parse(cid)
  } catch {
    throw new InvalidChallengeError('bad root or block CID')
  }
  // canonical forms, so membership checks compare like with like
  return { root: rootCid.toString(), cid: blockCid.toString(), mode, nonce }
}

/**
 * Judges an answer. `expected` is the block's bytes when the challenger holds
 * them (digest mode). Returns the result and, in block mode, the verified bytes.
 */
export function judgeAnswer (challenge: Challenge, answer: unknown, expected?: Uint8Array): { result: ProofResult, bytes?: Uint8Array } {
  if (!isRecord(answer) || typeof answer.type !== 'string') return { result: 'malformed' }
  switch (answer.type) {
    case 'missing': return { result: 'missing' }
    case 'refused': return { result: 'refused' }
    case 'busy': return { result: 'busy' }
    case 'digest': {
      if (challenge.mode !== 'digest' || expected == null || !(answer.digest instanceof Uint8Array) || answer.digest.length !== DIGEST_BYTES) return { result: 'malformed' }
      const want = proofDigest(challenge.nonce, challenge.root, challenge.cid, expected)
      return { result: timingSafeEqual(want, answer.digest) ? 'ok' : 'wrong' }
    }
    case 'block': {
      if (challenge.mode !== 'block' || !(answer.bytes instanceof Uint8Array) || answer.bytes.length > MAX_BLOCK_SIZE) return { result: 'malformed' }
      return matchesCid(CID.parse(challenge.cid), answer.bytes) ? { result: 'ok', bytes: answer.bytes } : { result: 'wrong' }
    }
    default: return { result: 'malformed' }
  }
}
