import * as dagCbor from '@ipld/dag-cbor'
import { keyIdFromPublicKey, signEd25519, verifyEd25519, publicKeyFromKeyId } from '@hearth/trust'
import type { KeyPair, TrustGraph } from '@hearth/trust'
import { isRecord } from '../p2p/framing.js'

/**
 * A pin set: one device's signed list of the roots it pins for its agent
 * (the agent's own data), with their layers. Replicating nodes learn from it
 * what to hold. The newest (`seq`) record per device wins.
 *
 * Wire form: dag-cbor { record: bytes, signature: bytes(64) }, the signature
 * by the device key over "hearth/v1/pin-set\0" || record. The record is
 * { v: 1, agent, device, seq, roots: [[cid, layer, size]], held: [[cid, owner, layer]],
 * failed: [[device, root, at, result]], declines: [layer], refused: [[cid, owner, layer, reason]] }
 * (`failed`, `declines` and `refused` may be absent: sets signed by older
 * daemons lack them).
 */
export interface PinSet {
  agent: string
  device: string
  /** when it was signed (ms); a device re-signs its set every replication pass, so it doubles as a heartbeat */
  seq: number
  /** roots this device pinned itself, for its agent */
  roots: Array<{ cid: string, layer: string, size: number }>
  /** replicas this device holds: for other agents, and for its own agent (copies of roots its agent's other devices pinned) */
  held: Array<{ cid: string, owner: string, layer: string }>
  /** holders whose last holding proof to this device failed: (holder device, root, when, how) */
  failed: Array<{ device: string, root: string, at: number, result: string }>
  /** layers in which this device holds nothing for its own agent (HEARTH_HOLD_OWN=false, or a quota of 0) */
  declines: string[]
  /** roots this device was chosen to hold but cannot take (`over-quota`), so others hold them instead */
  refused: Array<{ cid: string, owner: string, layer: string, reason: string }>
}

const DOMAIN = new TextEncoder().encode('hearth/v1/pin-set\0')
export const MAX_PIN_SET_ROOTS = 10_000
export const MAX_PIN_SET_BYTES = 1024 * 1024
export const MAX_PIN_SET_FAILURES = 1024
export const MAX_PIN_SET_REFUSALS = 1024
const MAX_LAYER_CHARS = 32

export class InvalidPinSetError extends Error {
  static readonly code = 'ERR_INVALID_PIN_SET'
  readonly code = InvalidPinSetError.code
  override readonly name = 'InvalidPinSetError'
}

const withDomain = (b: Uint8Array): Uint8Array => { const out = new Uint8Array(DOMAIN.length + b.length); out.set(DOMAIN); out.set(b, DOMAIN.length); return out }

export function signPinSet (deviceKey: KeyPair, set: PinSet): Uint8Array {
  const record = dagCbor.encode({ v: 1, agent: set.agent, device: set.device, seq: set.seq, roots: set.roots.map(r => [r.cid, r.layer, r.size]), held: set.held.map(h => [h.cid, h.owner, h.layer]), failed: set.failed.slice(0, MAX_PIN_SET_FAILURES).map(f => [f.device, f.root, f.at, f.result]), declines: set.declines, refused: set.refused.slice(0, MAX_PIN_SET_REFUSALS).map(r => [r.cid, r.owner, r.layer, r.reason]) })
  return dagCbor.encode({ record, signature: signEd25519(withDomain(record), deviceKey.secretKey) })
}

/** The device and seq a pin set claims, unverified (to skip one already held); undefined if it does not parse. */
export function peekPinSet (bytes: Uint8Array): { device: string, seq: number } | undefined {
  if (bytes.length > MAX_PIN_SET_BYTES) return undefined
  try {
    const outer = dagCbor.decode(bytes)
    if (!isRecord(outer) || !(outer.record instanceof Uint8Array)) return undefined
    const inner = dagCbor.decode(outer.record)
    return isRecord(inner) && typeof inner.device === 'string' && typeof inner.seq === 'number' ? { device: inner.device, seq: inner.seq } : undefined
  } catch {
    return undefined
  }
}

/**
 * Checks a pin set: its shape and bounds, the device's signature, and that
 * the trust graph holds a valid certificate of that device for that agent.
 */
export function verifyPinSet (bytes: Uint8Array, graph: TrustGraph): PinSet {
  if (bytes.length > MAX_PIN_SET_BYTES) throw new InvalidPinSetError('pin set too large')
  let outer: unknown
  let inner: unknown
  try {
    outer = dagCbor.decode(bytes)
    if (!isRecord(outer) || !(outer.record instanceof Uint8Array) || !(outer.signature instanceof Uint8Array)) throw new Error('shape')
    inner = dagCbor.decode(outer.record)
  } catch {
    throw new InvalidPinSetError('not a pin set')
  }
  const o = outer as { record: Uint8Array, signature: Uint8Array }
  if (!isRecord(inner) || inner.v !== 1 || typeof inner.agent !== 'string' || typeof inner.device !== 'string' ||
      typeof inner.seq !== 'number' || !Number.isSafeInteger(inner.seq) || !Array.isArray(inner.roots) || inner.roots.length > MAX_PIN_SET_ROOTS ||
      !Array.isArray(inner.held) || inner.held.length > MAX_PIN_SET_ROOTS ||
      (inner.failed !== undefined && (!Array.isArray(inner.failed) || inner.failed.length > MAX_PIN_SET_FAILURES)) ||
      (inner.declines !== undefined && (!Array.isArray(inner.declines) || inner.declines.length > 16 || !inner.declines.every(l => typeof l === 'string' && l.length <= MAX_LAYER_CHARS))) ||
      (inner.refused !== undefined && (!Array.isArray(inner.refused) || inner.refused.length > MAX_PIN_SET_REFUSALS))) {
    throw new InvalidPinSetError('malformed pin set')
  }
  const roots = inner.roots.map(r => {
    if (!Array.isArray(r) || typeof r[0] !== 'string' || r[0].length > 256 || typeof r[1] !== 'string' || typeof r[2] !== 'number') throw new InvalidPinSetError('malformed root')
    return { cid: r[0], layer: r[1], size: r[2] }
  })
  const held = inner.held.map(h => {
    if (!Array.isArray(h) || typeof h[0] !== 'string' || h[0].length > 256 || typeof h[1] !== 'string' || h[1].length > 128 || typeof h[2] !== 'string') throw new InvalidPinSetError('malformed replica')
    return { cid: h[0], owner: h[1], layer: h[2] }
  })
  // absent in sets signed before holding proofs existed
  const failed = ((inner.failed ?? []) as unknown[]).map(f => {
    if (!Array.isArray(f) || typeof f[0] !== 'string' || f[0].length > 128 || typeof f[1] !== 'string' || f[1].length > 256 || typeof f[2] !== 'number' || !Number.isSafeInteger(f[2]) || typeof f[3] !== 'string' || f[3].length > 32) throw new InvalidPinSetError('malformed proof failure')
    return { device: f[0], root: f[1], at: f[2], result: f[3] }
  })
  const refused = ((inner.refused ?? []) as unknown[]).map(r => {
    if (!Array.isArray(r) || typeof r[0] !== 'string' || r[0].length > 256 || typeof r[1] !== 'string' || r[1].length > 128 || typeof r[2] !== 'string' || r[2].length > MAX_LAYER_CHARS || typeof r[3] !== 'string' || r[3].length > 32) throw new InvalidPinSetError('malformed refusal')
    return { cid: r[0], owner: r[1], layer: r[2], reason: r[3] }
  })
  let devicePub: Uint8Array
  try { devicePub = publicKeyFromKeyId(inner.device) } catch { throw new InvalidPinSetError('bad device id') }
  if (keyIdFromPublicKey(devicePub) !== inner.device || o.signature.length !== 64 || !verifyEd25519(o.signature, withDomain(o.record), devicePub)) {
    throw new InvalidPinSetError('bad signature')
  }
  if (graph.agentOfDevice(inner.device)?.agent !== inner.agent) throw new InvalidPinSetError('the device is not certified for that agent')
  return { agent: inner.agent, device: inner.device, seq: inner.seq, roots, held, failed, declines: (inner.declines ?? []) as string[], refused }
}
