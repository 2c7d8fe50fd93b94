import { domainTag, ed, statementCid } from '@hearth/trust'
import type { SignedStatement } from '@hearth/trust'

/**
 * The baseline: raw noble-ed25519 verification of exactly the bytes the
 * envelope signs (`domain tag || statement bytes`), prepared outside the
 * timed loop, with the same strict (RFC 8032, non-ZIP-215) option the
 * envelope uses. Whatever ours costs beyond this is the envelope.
 */
export interface RawSample { signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array }

// The canonical envelope is a2 | 69 "signature" | 58 40 <64 bytes> | 69 "statement" | <statement>.
const STATEMENT_OFFSET = 1 + 10 + 2 + 64 + 10

export function rawSamples (statements: SignedStatement[]): RawSample[] {
  return statements.map(s => {
    const body = s.bytes.subarray(STATEMENT_OFFSET)
    if (statementCid(body).toString() !== s.id) throw new Error('statement bytes not where the envelope layout puts them')
    const tag = domainTag(s.statement.type)
    const message = new Uint8Array(tag.length + body.length)
    message.set(tag)
    message.set(body, tag.length)
    return { signature: s.signature, message, publicKey: s.statement.issuer }
  })
}

/** Process CPU time in seconds: steadier than wall time on a shared machine. */
export function cpuSeconds (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Verifications per CPU second over the samples. */
export function rawVerifyRate (samples: RawSample[]): number {
  const start = cpuSeconds()
  for (const s of samples) {
    if (!ed.verify(s.signature, s.message, s.publicKey, { zip215: false })) throw new Error('baseline sample does not verify')
  }
  return samples.length / (cpuSeconds() - start)
}
