import { createHash } from 'node:crypto'
import * as A from '@automerge/automerge'
import type { DeviceId } from '@hearth/trust'
import type { ChangeSignature } from './codec.js'
import { ChangeTooLargeError, InvalidChangeSignatureError, MalformedMessageError, MessageTooLargeError, UnauthorizedWriterError } from './errors.js'
import { actorIdFromDevice, changeSigningMessage, hexToBytes } from './signing.js'
import type { DocumentAcl, Verifier } from './index.js'

/** One Automerge change, as read from a sync message, a change bundle or a document chunk. */
export interface ExtractedChange {
  hash: string
  actor: string
  seq: number
  bytes: Uint8Array
}

export interface ExtractCaps {
  maxChangeBytes: number
  maxChanges: number
}

/**
 * Splits Automerge chunks into changes. A chunk is either one change or, as
 * the v2 sync protocol sends to a peer that has nothing, a whole saved
 * document; a document is loaded aside and read back change by change, so
 * every change it holds is checked like any other. Anything that does not
 * decode is a {@link MalformedMessageError}.
 */
export function extractChanges (chunks: readonly Uint8Array[], caps: ExtractCaps): ExtractedChange[] {
  const out: ExtractedChange[] = []
  const seen = new Set<string>()
  const push = (bytes: Uint8Array, d: { hash: string, actor: string, seq: number }): void => {
    if (bytes.length > caps.maxChangeBytes) throw new ChangeTooLargeError(`change of ${bytes.length} bytes exceeds ${caps.maxChangeBytes}`)
    if (seen.has(d.hash)) return
    seen.add(d.hash)
    if (out.length >= caps.maxChanges) throw new MessageTooLargeError(`more than ${caps.maxChanges} changes in one message`)
    out.push({ hash: d.hash, actor: d.actor, seq: d.seq, bytes })
  }
  for (const chunk of chunks) {
    if (chunk.length > 8 && chunk[8] !== 0) {
      // chunk type byte after magic and checksum: 0 = document, 1 = change, 2 = compressed change
      let d: A.DecodedChange
      try {
        d = A.decodeChange(chunk)
      } catch {
        throw new MalformedMessageError('a chunk is not an Automerge change')
      }
      push(chunk, d)
      continue
    }
    let doc: A.Doc<unknown>
    try {
      doc = A.load(chunk)
    } catch {
      throw new MalformedMessageError('a chunk is neither an Automerge change nor a document')
    }
    try {
      for (const c of changesOfDocument(doc, caps.maxChanges)) push(c.bytes, c)
    } finally {
      A.free(doc)
    }
  }
  return out
}

/**
 * Every change of a loaded document with its hash, actor and seq, without
 * decoding their operations: Automerge's change metadata, matched to each
 * change's bytes by hash. A change chunk's hash is the SHA-256 of what
 * follows its magic number and checksum (the chunk type, length and body);
 * a chunk whose hash is not among the metadata (a compressed one) is
 * decoded the slow way. Caps the count before anything is re-encoded.
 */
export function changesOfDocument (doc: A.Doc<unknown>, maxChanges: number): ExtractedChange[] {
  const meta = A.getChangesMetaSince(doc, [])
  if (meta.length > maxChanges) throw new MessageTooLargeError(`more than ${maxChanges} changes in one document`)
  const byHash = new Map(meta.map(m => [m.hash, m]))
  return A.getAllChanges(doc).map(bytes => {
    const m = bytes[8] === 1 ? byHash.get(createHash('sha256').update(bytes.subarray(8)).digest('hex')) : undefined
    const d = m ?? A.decodeChange(bytes)
    return { hash: d.hash, actor: d.actor, seq: d.seq, bytes }
  })
}

/** a signature accepted for a change, as stored beside it */
export interface AcceptedSignature extends ChangeSignature {
  actor: string
  seq: number
}

/**
 * Checks every change not already stored (`known`): a signature for its hash
 * from the envelope, the actor bound to the signing device (kind `device`),
 * the Ed25519 signature over the domain-tagged (document id, hash), and the
 * signer's write permission under the document's ACL. Throws on the first
 * failure, so a message is accepted or refused as a whole.
 */
export function verifyChanges (
  docIdBytes: Uint8Array,
  acl: DocumentAcl,
  changes: readonly ExtractedChange[],
  signatures: readonly ChangeSignature[],
  known: (hash: string) => boolean,
  verifier: Verifier
): AcceptedSignature[] {
  const byHash = new Map<string, ChangeSignature>()
  for (const s of signatures) byHash.set(s.hash, s)
  const writers = new Map<DeviceId, boolean>()
  const out: AcceptedSignature[] = []
  for (const c of changes) {
    if (known(c.hash)) continue
    const s = byHash.get(c.hash)
    if (s == null) throw new InvalidChangeSignatureError(`change ${c.hash} carries no signature`)
    if (s.kind === 'device' && c.actor !== actorIdFromDevice(s.device)) {
      throw new InvalidChangeSignatureError(`change ${c.hash}: actor ${c.actor} is not bound to device ${s.device}`)
    }
    if (!verifier.verify(changeSigningMessage(s.kind, docIdBytes, hexToBytes(c.hash)), s.signature, s.device)) {
      throw new InvalidChangeSignatureError(`change ${c.hash}: signature does not verify`)
    }
    let may = writers.get(s.device)
    if (may === undefined) {
      may = verifier.mayWrite(s.device, { owner: acl.owner, writers: acl.writers })
      writers.set(s.device, may)
    }
    if (!may) throw new UnauthorizedWriterError(`change ${c.hash}: device ${s.device} may not write this document`)
    out.push({ ...s, actor: c.actor, seq: c.seq })
  }
  return out
}
