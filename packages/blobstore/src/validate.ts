import { LAYERS, MAX_CONTENT_TYPE_LENGTH, MAX_OWNER_LENGTH, PIN_LAYERS } from './constants.js'
import { InvalidArgumentError, RangeNotSatisfiableError } from './errors.js'
import type { Layer, PinLayer } from './constants.js'

export function checkLayer (layer: unknown): Layer {
  if (typeof layer !== 'string' || !(LAYERS as readonly string[]).includes(layer)) throw new InvalidArgumentError(`layer must be one of ${LAYERS.join(', ')}`)
  return layer as Layer
}

export function checkPinLayer (layer: unknown): PinLayer {
  if (typeof layer !== 'string' || !(PIN_LAYERS as readonly string[]).includes(layer)) throw new InvalidArgumentError(`pin layer must be one of ${PIN_LAYERS.join(', ')}`)
  return layer as PinLayer
}

/** Agent ids are opaque strings: printable ASCII, bounded */
export function checkOwner (owner: unknown): string | undefined {
  if (owner === undefined) return undefined
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > MAX_OWNER_LENGTH || !/^[\x21-\x7e]+$/.test(owner)) {
    throw new InvalidArgumentError('owner must be 1 to 255 printable ASCII characters without spaces')
  }
  return owner
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const CONTENT_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(\\s*;[\\x20-\\x7e]*)?$`)

/** A media type as HTTP sends it (`type/subtype; params`), bounded, no control characters */
export function checkContentType (value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length > MAX_CONTENT_TYPE_LENGTH || !CONTENT_TYPE.test(value)) {
    throw new InvalidArgumentError('contentType must be a media type such as text/plain; charset=utf-8')
  }
  return value
}

export function checkQuotas (quotas: unknown): Partial<Record<Layer, number>> {
  if (quotas == null) return {}
  if (typeof quotas !== 'object') throw new InvalidArgumentError('quotas must be an object')
  const out: Partial<Record<Layer, number>> = {}
  for (const [k, v] of Object.entries(quotas)) {
    const layer = checkLayer(k)
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`quota of ${layer} must be a non-negative integer of bytes`)
    out[layer] = v
  }
  return out
}

export function checkNonNegativeInt (value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`)
  return value
}

/**
 * HTTP-like range rules: the first byte must exist (any offset is fine for an
 * empty read of an empty blob), and the length is clamped to the end.
 */
export function resolveRange (size: number, offset: unknown, length: unknown): { offset: number, length: number } {
  const o = offset === undefined ? 0 : checkRangeInt(offset, size)
  const l = length === undefined ? undefined : checkRangeInt(length, size)
  if (size === 0) {
    if (o !== 0) throw new RangeNotSatisfiableError(size)
    return { offset: 0, length: 0 }
  }
  if (o >= size) throw new RangeNotSatisfiableError(size)
  return { offset: o, length: Math.min(l ?? size - o, size - o) }
}

function checkRangeInt (value: unknown, size: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new RangeNotSatisfiableError(size, 'offset and length must be non-negative integers')
  return value
}
