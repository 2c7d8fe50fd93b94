import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { domainTag, ed, statementCid } from '@hearth/trust'
import type { SignedStatement } from '@hearth/trust'

/**
 * The baseline: raw native (OpenSSL, through node:crypto) Ed25519
 * verification of exactly the bytes the envelope signs (`domain tag ||
 * statement bytes`), with the key objects built outside the timed loop:
 * the fastest verifier this machine has. Whatever ours costs beyond this is
 * the envelope and the strict checks. Raw noble-ed25519 (strict), which the
 * envelope used before, is measured alongside.
 */
export interface RawSample { signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array, key: KeyObject }

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

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
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, s.statement.issuer]), format: 'der', type: 'spki' })
    return { signature: s.signature, message, publicKey: s.statement.issuer, key }
  })
}

/** Process CPU time in seconds: steadier than wall time on a shared machine. */
export function cpuSeconds (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Native verifications per CPU second over the samples. */
export function rawVerifyRate (samples: RawSample[]): number {
  const start = cpuSeconds()
  for (const s of samples) {
    if (!nodeVerify(null, s.message, s.key, s.signature)) throw new Error('baseline sample does not verify')
  }
  return samples.length / (cpuSeconds() - start)
}

/** Raw noble-ed25519 strict verifications per CPU second over the samples. */
export function nobleVerifyRate (samples: RawSample[]): number {
  const start = cpuSeconds()
  for (const s of samples) {
    if (!ed.verify(s.signature, s.message, s.publicKey, { zip215: false })) throw new Error('baseline sample does not verify')
  }
  return samples.length / (cpuSeconds() - start)
}
