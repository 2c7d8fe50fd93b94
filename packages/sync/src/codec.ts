import { keyIdFromPublicKey, publicKeyFromKeyId } from '@hearth/trust'
import type { DeviceId } from '@hearth/trust'
import { MAX_IDS_PER_MESSAGE, MAX_MESSAGE_BYTES } from './constants.js'
import { fromBytes, parseDocumentId } from './document-id.js'
import type { DocumentId } from './document-id.js'
import { MalformedMessageError, MessageTooLargeError } from './errors.js'
import type { SignatureKind } from './index.js'
import { bytesToHex, hexToBytes } from './signing.js'

/**
 * The daemon-to-daemon wire format, version 1. Every message is one frame:
 *
 * ```
 * u8 version (1) | u8 type | body
 * subscribe (1), unsubscribe (2):  uvarint n | n × docId(16)
 * sync (3):     docId(16) | u8 flags (bit 0: header present)
 *               | [header: uvarint len, JSON bytes | headerDevice(32) | headerSig(64)]
 *               | automerge sync message: uvarint len, bytes
 *               | signatures
 * doc-error (4): docId(16) | uvarint len, ASCII error code (≤ 64)
 * changes (5):  docId(16) | uvarint n | n × (uvarint len, change bytes) | signatures
 * want (6):     as subscribe, for documents the sender does not hold at all
 * snapshot (7): docId(16) | uvarint len, header JSON | headerDevice(32) | headerSig(64)
 *               | uvarint len, saved Automerge document | signatures
 * signatures := uvarint d | d × device public key(32) | uvarint s | s × (hash(32) | u8 kind (0 device, 1 custodial) | uvarint deviceIndex | sig(64))
 * ```
 *
 * Lengths are LEB128 unsigned varints of at most 4 bytes. Trailing bytes,
 * unknown versions or types, out-of-range indexes and over-long fields are
 * all {@link MalformedMessageError}; decoding allocates nothing beyond the
 * input's size.
 */
export const WIRE_VERSION = 1

export interface ChangeSignature {
  /** the change hash, hex (as Automerge writes it) */
  hash: string
  kind: SignatureKind
  device: DeviceId
  signature: Uint8Array
}

export interface WireHeader {
  bytes: Uint8Array
  device: DeviceId
  signature: Uint8Array
}

export type WireMessage =
  | { type: 'subscribe', docs: DocumentId[] }
  | { type: 'unsubscribe', docs: DocumentId[] }
  | { type: 'sync', doc: DocumentId, header?: WireHeader, data: Uint8Array, signatures: ChangeSignature[] }
  | { type: 'doc-error', doc: DocumentId, code: string }
  | { type: 'changes', doc: DocumentId, changes: Uint8Array[], signatures: ChangeSignature[] }
  | { type: 'want', docs: DocumentId[] }
  | { type: 'snapshot', doc: DocumentId, header: WireHeader, data: Uint8Array, signatures: ChangeSignature[] }

const TYPES = { subscribe: 1, unsubscribe: 2, sync: 3, 'doc-error': 4, changes: 5, want: 6, snapshot: 7 } as const

class Writer {
  private readonly parts: Uint8Array[] = []
  length = 0
  bytes (b: Uint8Array): void { this.parts.push(b); this.length += b.length }
  u8 (n: number): void { this.bytes(Uint8Array.of(n)) }
  uvarint (n: number): void {
    const out: number[] = []
    do {
      let b = n & 0x7f
      n = Math.floor(n / 128)
      if (n > 0) b |= 0x80
      out.push(b)
    } while (n > 0)
    this.bytes(Uint8Array.from(out))
  }
  lp (b: Uint8Array): void { this.uvarint(b.length); this.bytes(b) }
  finish (): Uint8Array {
    const out = new Uint8Array(this.length)
    let o = 0
    for (const p of this.parts) { out.set(p, o); o += p.length }
    return out
  }
}

class Reader {
  pos = 0
  constructor (private readonly buf: Uint8Array) {}
  private need (n: number): void {
    if (this.pos + n > this.buf.length) throw new MalformedMessageError('message truncated')
  }
  u8 (): number { this.need(1); return this.buf[this.pos++] }
  take (n: number): Uint8Array {
    this.need(n)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }
  uvarint (): number {
    let n = 0
    for (let i = 0; i < 4; i++) {
      const b = this.u8()
      n += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new MalformedMessageError('over-long varint')
        return n
      }
    }
    throw new MalformedMessageError('varint too long')
  }
  /** a count of items each at least `minItemBytes` long: refuses counts the remaining bytes cannot hold */
  count (minItemBytes: number, max: number): number {
    const n = this.uvarint()
    if (n > max || n * minItemBytes > this.buf.length - this.pos) throw new MalformedMessageError('count out of range')
    return n
  }
  lp (max = Infinity): Uint8Array {
    const n = this.uvarint()
    if (n > max) throw new MalformedMessageError('field too long')
    return this.take(n)
  }
  end (): void {
    if (this.pos !== this.buf.length) throw new MalformedMessageError('trailing bytes')
  }
}

const bytesCache = new Map<string, Uint8Array>()
function writeDoc (w: Writer, doc: DocumentId): void {
  let bytes = bytesCache.get(doc)
  if (bytes == null) {
    bytes = parseDocumentId(doc).bytes
    if (bytesCache.size >= 50_000) bytesCache.clear()
    bytesCache.set(doc, bytes)
  }
  w.bytes(bytes)
}

function writeSignatures (w: Writer, signatures: readonly ChangeSignature[]): void {
  const devices = new Map<string, number>()
  for (const s of signatures) if (!devices.has(s.device)) devices.set(s.device, devices.size)
  w.uvarint(devices.size)
  for (const d of devices.keys()) w.bytes(publicKeyFromKeyId(d))
  w.uvarint(signatures.length)
  for (const s of signatures) {
    const hash = hexToBytes(s.hash)
    if (hash.length !== 32 || s.signature.length !== 64) throw new MalformedMessageError('a signature entry needs a 32-byte hash and a 64-byte signature')
    w.bytes(hash)
    w.u8(s.kind === 'custodial' ? 1 : 0)
    w.uvarint(devices.get(s.device) as number)
    w.bytes(s.signature)
  }
}

function readSignatures (r: Reader): ChangeSignature[] {
  const nd = r.count(32, MAX_MESSAGE_BYTES)
  const devices: DeviceId[] = []
  for (let i = 0; i < nd; i++) devices.push(keyIdFromPublicKey(r.take(32)))
  // one encoding per message: the table lists distinct devices in the order signatures first use them
  if (new Set(devices).size !== devices.length) throw new MalformedMessageError('a device appears twice in the signature table')
  const ns = r.count(98, MAX_MESSAGE_BYTES)
  const out: ChangeSignature[] = []
  let firstUnused = 0
  for (let i = 0; i < ns; i++) {
    const hash = bytesToHex(r.take(32))
    const k = r.u8()
    if (k > 1) throw new MalformedMessageError('unknown signature kind')
    const di = r.uvarint()
    if (di >= devices.length) throw new MalformedMessageError('device index out of range')
    if (di > firstUnused) throw new MalformedMessageError('the signature table is not in first-use order')
    if (di === firstUnused) firstUnused++
    out.push({ hash, kind: k === 1 ? 'custodial' : 'device', device: devices[di], signature: r.take(64) })
  }
  if (firstUnused !== devices.length) throw new MalformedMessageError('a device in the signature table signs nothing')
  return out
}

export function encodeMessage (msg: WireMessage): Uint8Array {
  const w = new Writer()
  w.u8(WIRE_VERSION)
  w.u8(TYPES[msg.type])
  switch (msg.type) {
    case 'subscribe':
    case 'unsubscribe':
    case 'want':
      w.uvarint(msg.docs.length)
      for (const d of msg.docs) writeDoc(w, d)
      break
    case 'sync':
      writeDoc(w, msg.doc)
      w.u8(msg.header != null ? 1 : 0)
      if (msg.header != null) {
        w.lp(msg.header.bytes)
        w.bytes(publicKeyFromKeyId(msg.header.device))
        w.bytes(msg.header.signature)
      }
      w.lp(msg.data)
      writeSignatures(w, msg.signatures)
      break
    case 'doc-error':
      writeDoc(w, msg.doc)
      w.lp(new TextEncoder().encode(msg.code.slice(0, 64)))
      break
    case 'changes':
      writeDoc(w, msg.doc)
      w.uvarint(msg.changes.length)
      for (const c of msg.changes) w.lp(c)
      writeSignatures(w, msg.signatures)
      break
    case 'snapshot':
      writeDoc(w, msg.doc)
      w.lp(msg.header.bytes)
      w.bytes(publicKeyFromKeyId(msg.header.device))
      w.bytes(msg.header.signature)
      w.lp(msg.data)
      writeSignatures(w, msg.signatures)
      break
  }
  return w.finish()
}

// base58check-encoding an id hashes it twice; the same ids come back in every message
const idCache = new Map<string, DocumentId>()
function readDoc (r: Reader): DocumentId {
  const bytes = r.take(16)
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('latin1')
  let id = idCache.get(key)
  if (id == null) {
    id = fromBytes(bytes).id
    if (idCache.size >= 50_000) idCache.clear()
    idCache.set(key, id)
  }
  return id
}

/**
 * Decodes one wire message. Throws {@link MessageTooLargeError} above
 * `maxBytes` and {@link MalformedMessageError} for anything else wrong;
 * never anything else.
 */
export function decodeMessage (bytes: Uint8Array, maxBytes = MAX_MESSAGE_BYTES): WireMessage {
  if (!(bytes instanceof Uint8Array)) throw new MalformedMessageError('a message is bytes')
  if (bytes.length > maxBytes) throw new MessageTooLargeError(`message of ${bytes.length} bytes exceeds ${maxBytes}`)
  try {
    const r = new Reader(bytes)
    if (r.u8() !== WIRE_VERSION) throw new MalformedMessageError('unknown wire version')
    const type = r.u8()
    let msg: WireMessage
    switch (type) {
      case 1:
      case 2:
      case 6: {
        const n = r.count(16, MAX_IDS_PER_MESSAGE)
        const docs: DocumentId[] = []
        for (let i = 0; i < n; i++) docs.push(readDoc(r))
        msg = { type: type === 1 ? 'subscribe' : type === 2 ? 'unsubscribe' : 'want', docs }
        break
      }
      case 7: {
        const doc = readDoc(r)
        const hb = r.lp()
        const header = { bytes: hb, device: keyIdFromPublicKey(r.take(32)), signature: r.take(64) }
        const data = r.lp()
        msg = { type: 'snapshot', doc, header, data, signatures: readSignatures(r) }
        break
      }
      case 3: {
        const doc = readDoc(r)
        const flags = r.u8()
        if (flags > 1) throw new MalformedMessageError('unknown flags')
        let header: WireHeader | undefined
        if (flags === 1) {
          const hb = r.lp()
          header = { bytes: hb, device: keyIdFromPublicKey(r.take(32)), signature: r.take(64) }
        }
        const data = r.lp()
        msg = { type: 'sync', doc, data, signatures: readSignatures(r) }
        if (header != null) msg.header = header
        break
      }
      case 4: {
        const doc = readDoc(r)
        const code = r.lp(64)
        if (!code.every(c => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || c === 0x5f)) throw new MalformedMessageError('error code is not [A-Z0-9_]')
        msg = { type: 'doc-error', doc, code: new TextDecoder().decode(code) }
        break
      }
      case 5: {
        const doc = readDoc(r)
        const n = r.count(1, MAX_MESSAGE_BYTES)
        const changes: Uint8Array[] = []
        for (let i = 0; i < n; i++) changes.push(r.lp())
        msg = { type: 'changes', doc, changes, signatures: readSignatures(r) }
        break
      }
      default:
        throw new MalformedMessageError('unknown message type')
    }
    r.end()
    return msg
  } catch (err: any) {
    if (err instanceof MalformedMessageError) throw err
    // fromBytes / keyIdFromPublicKey only fail on lengths the reader already fixed; stay total anyway
    throw new MalformedMessageError(`undecodable message: ${String(err?.code ?? err?.name ?? 'error')}`)
  }
}
