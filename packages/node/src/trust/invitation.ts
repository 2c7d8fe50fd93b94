import * as dagCbor from '@ipld/dag-cbor'
import { isRecord } from '../p2p/framing.js'

/**
 * A one-time pairing invitation: where to reach the inviting device and the
 * secret that lets one new device in. Printed as `hearth-invite:` followed by
 * base64url of a small dag-cbor map.
 */
export interface Invitation {
  peer: string
  addrs: string[]
  secret: Uint8Array
  expiresAt: number
}

export const INVITE_PREFIX = 'hearth-invite:'
const MAX_TEXT = 4096

export class InvalidInvitationError extends Error {
  static readonly code = 'ERR_INVALID_INVITATION'
  readonly code = InvalidInvitationError.code
  override readonly name = 'InvalidInvitationError'
}

export function encodeInvitation (inv: Invitation): string {
  const bytes = dagCbor.encode({ v: 1, peer: inv.peer, addrs: inv.addrs, secret: inv.secret, exp: inv.expiresAt })
  return INVITE_PREFIX + Buffer.from(bytes).toString('base64url')
}

export function decodeInvitation (text: string): Invitation {
  const t = text.trim()
  if (!t.startsWith(INVITE_PREFIX) || t.length > MAX_TEXT) throw new InvalidInvitationError(`an invitation starts with ${INVITE_PREFIX}`)
  let v: unknown
  try {
    v = dagCbor.decode(Buffer.from(t.slice(INVITE_PREFIX.length), 'base64url'))
  } catch {
    throw new InvalidInvitationError('the invitation is damaged')
  }
  if (!isRecord(v) || v.v !== 1 || typeof v.peer !== 'string' || !Array.isArray(v.addrs) || !v.addrs.every(a => typeof a === 'string') ||
      !(v.secret instanceof Uint8Array) || v.secret.length !== 32 || typeof v.exp !== 'number' || v.addrs.length > 16) {
    throw new InvalidInvitationError('the invitation is damaged')
  }
  return { peer: v.peer, addrs: v.addrs as string[], secret: v.secret, expiresAt: v.exp }
}
