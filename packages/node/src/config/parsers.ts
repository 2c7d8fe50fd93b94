import { isIPv4, isIPv6 } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from '../errors.js'
import { MAX_BOOTSTRAP_ADDRS, MAX_LABELS } from '../constants.js'

/**
 * Value parsers for configuration. Each takes what a flag or variable gave
 * (a string) or what a JSON config file gave (any JSON value) and returns a
 * typed value or throws a ConfigError naming `key`.
 */
export type Parser<T> = (raw: unknown, key: string) => T

const TRUE = new Set(['true', '1', 'yes', 'on'])
const FALSE = new Set(['false', '0', 'no', 'off'])

export const bool: Parser<boolean> = (raw, key) => {
  if (typeof raw === 'boolean') return raw
  if (typeof raw === 'string') {
    const v = raw.trim().toLowerCase()
    if (TRUE.has(v)) return true
    if (FALSE.has(v)) return false
  }
  throw new ConfigError(key, `expected true or false, got ${show(raw)}`)
}

export function int (min: number, max: number): Parser<number> {
  return (raw, key) => {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(key, `expected an integer from ${min} to ${max}, got ${show(raw)}`)
    }
    return n
  }
}

export const port = int(0, 65535)

export const host: Parser<string> = (raw, key) => {
  if (typeof raw !== 'string') throw new ConfigError(key, `expected a host name or IP address, got ${show(raw)}`)
  const v = raw.trim()
  const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v
  if (isIPv4(bare) || isIPv6(bare)) return bare
  if (/^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(v)) return v
  throw new ConfigError(key, `expected a host name or IP address, got ${show(raw)}`)
}

export function oneOf<T extends string> (values: readonly T[]): Parser<T> {
  return (raw, key) => {
    if (typeof raw === 'string' && (values as readonly string[]).includes(raw.trim().toLowerCase())) {
      return raw.trim().toLowerCase() as T
    }
    throw new ConfigError(key, `expected one of ${values.join(', ')}, got ${show(raw)}`)
  }
}

export const nonEmptyString: Parser<string> = (raw, key) => {
  if (typeof raw !== 'string' || raw.trim() === '') throw new ConfigError(key, `expected a non-empty string, got ${show(raw)}`)
  return raw.trim()
}

export const apiToken: Parser<string> = (raw, key) => {
  const v = nonEmptyString(raw, key)
  if (v.length < 16 || v.length > 512 || !/^[\x21-\x7e]+$/.test(v)) {
    throw new ConfigError(key, 'expected 16 to 512 printable characters without spaces')
  }
  return v
}

/** A comma-separated string or a JSON array of multiaddrs. */
export const multiaddrList: Parser<string[]> = (raw, key) => {
  const items = typeof raw === 'string'
    ? raw.split(',').map(s => s.trim()).filter(s => s !== '')
    : Array.isArray(raw) ? raw : undefined
  if (items == null) throw new ConfigError(key, `expected comma-separated multiaddrs, got ${show(raw)}`)
  if (items.length > MAX_BOOTSTRAP_ADDRS) throw new ConfigError(key, `at most ${MAX_BOOTSTRAP_ADDRS} addresses`)
  return items.map(item => {
    if (typeof item !== 'string') throw new ConfigError(key, `expected a multiaddr string, got ${show(item)}`)
    try {
      const ma = multiaddr(item.trim())
      if (ma.getComponents().length === 0) throw new Error('empty')
      return ma.toString()
    } catch {
      throw new ConfigError(key, `not a valid multiaddr: ${show(item)}`)
    }
  })
}

const LABEL_KEY = /^[a-z][a-z0-9_.-]{0,62}$/
// values as long as a Kubernetes node name (253), so `node=$(NODE_NAME)` always fits
const LABEL_VALUE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/

/** `region=eu,cluster=smith` or a JSON object of strings. */
export const labels: Parser<Record<string, string>> = (raw, key) => {
  let pairs: Array<[string, unknown]>
  if (typeof raw === 'string') {
    pairs = raw.split(',').map(s => s.trim()).filter(s => s !== '').map(part => {
      const eq = part.indexOf('=')
      if (eq <= 0) throw new ConfigError(key, `expected key=value pairs, got ${show(part)}`)
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()]
    })
  } else if (raw != null && typeof raw === 'object' && !Array.isArray(raw)) {
    pairs = Object.entries(raw)
  } else {
    throw new ConfigError(key, `expected key=value pairs, got ${show(raw)}`)
  }
  if (pairs.length > MAX_LABELS) throw new ConfigError(key, `at most ${MAX_LABELS} labels`)
  const out: Record<string, string> = {}
  for (const [k, v] of pairs) {
    if (!LABEL_KEY.test(k)) throw new ConfigError(key, `label name ${show(k)} must match ${LABEL_KEY.source}`)
    if (typeof v !== 'string' || !LABEL_VALUE.test(v)) throw new ConfigError(key, `label ${k} has an invalid value ${show(v)}`)
    if (k in out) throw new ConfigError(key, `label ${k} is given twice`)
    out[k] = v
  }
  return out
}

function show (raw: unknown): string {
  const s = JSON.stringify(raw) ?? String(raw)
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

/** Comma-separated web origins (`https://app.example`, `http://localhost:5173`), or a JSON array of them */
export const origins: Parser<string[]> = (raw, key) => {
  const items = typeof raw === 'string' ? raw.split(',').map(s => s.trim()).filter(s => s !== '') : Array.isArray(raw) ? raw : undefined
  if (items == null || items.length > 32) throw new ConfigError(key, `expected up to 32 comma-separated origins, got ${show(raw)}`)
  return items.map(item => {
    if (typeof item !== 'string') throw new ConfigError(key, `expected an origin, got ${show(item)}`)
    let url: URL
    try { url = new URL(item) } catch { throw new ConfigError(key, `not an origin: ${show(item)} (expected scheme://host[:port])`) }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== item.replace(/\/$/, '')) {
      throw new ConfigError(key, `not an origin: ${show(item)} (expected scheme://host[:port], no path)`)
    }
    return url.origin
  })
}

/** Comma-separated DNS servers: `ip`, `ip:port` or `[ipv6]:port`. */
export const dnsServers: Parser<string[]> = (raw, key) => {
  const items = typeof raw === 'string' ? raw.split(',').map(s => s.trim()).filter(s => s !== '') : Array.isArray(raw) ? raw : undefined
  if (items == null || items.length > 8) throw new ConfigError(key, `expected up to 8 comma-separated DNS servers, got ${show(raw)}`)
  return items.map(item => {
    if (typeof item !== 'string') throw new ConfigError(key, `expected a DNS server address, got ${show(item)}`)
    const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(item) ?? /^([0-9.]+)(?::(\d{1,5}))?$/.exec(item)
    const ip = m?.[1] ?? item
    const portOk = m?.[2] == null || (Number(m[2]) > 0 && Number(m[2]) < 65536)
    if (!(isIPv4(ip) || isIPv6(ip)) || !portOk) throw new ConfigError(key, `not a DNS server address: ${show(item)}`)
    return item
  })
}

export function optional<T> (parse: Parser<T>): Parser<T | undefined> {
  return (raw, key) => (raw === '' ? undefined : parse(raw, key))
}

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
  k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40
}

/** A byte size: a number of bytes, or `20GiB`, `500MB`, `1.5 TiB`. */
export function parseSize (raw: unknown, key: string): number {
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) return raw
  const m = typeof raw === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw) : null
  const unit = m != null ? UNITS[m[2].toLowerCase()] : undefined
  const n = m != null && unit != null ? Math.floor(Number(m[1]) * unit) : NaN
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(key, `expected a size like 20GiB or 500MB, got ${show(raw)}`)
  return n
}

/** A byte size within [min, max]. */
export function sizeBetween (min: number, max: number): Parser<number> {
  return (raw, key) => {
    const n = parseSize(raw, key)
    if (n < min || n > max) throw new ConfigError(key, `expected a size from ${min} to ${max} bytes, got ${show(raw)}`)
    return n
  }
}

/** `layer=size,...` or a JSON object of sizes, for the given layer names. */
export function sizesByName (names: readonly string[]): Parser<Record<string, number>> {
  return (raw, key) => {
    let pairs: Array<[string, unknown]>
    if (typeof raw === 'string') {
      pairs = raw.split(',').map(s => s.trim()).filter(s => s !== '').map(part => {
        const eq = part.indexOf('=')
        if (eq <= 0) throw new ConfigError(key, `expected name=size pairs, got ${show(part)}`)
        return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()]
      })
    } else if (raw != null && typeof raw === 'object' && !Array.isArray(raw)) {
      pairs = Object.entries(raw)
    } else {
      throw new ConfigError(key, `expected name=size pairs, got ${show(raw)}`)
    }
    const out: Record<string, number> = {}
    for (const [name, value] of pairs) {
      if (!names.includes(name)) throw new ConfigError(key, `unknown name ${show(name)}: expected one of ${names.join(', ')}`)
      out[name] = parseSize(value, `${key} ${name}`)
    }
    return out
  }
}

/** `name=n,...` small counts (1 to 16) for the given names. */
export function countsByName (names: readonly string[]): Parser<Record<string, number>> {
  return (raw, key) => {
    const pairs: Array<[string, unknown]> = typeof raw === 'string'
      ? raw.split(',').map(x => x.trim()).filter(x => x !== '').map(x => { const [k, ...v] = x.split('='); return [k.trim(), v.join('=').trim()] })
      : raw != null && typeof raw === 'object' && !Array.isArray(raw) ? Object.entries(raw) : []
    if (pairs.length === 0) throw new ConfigError(key, `expected name=count pairs, got ${show(raw)}`)
    const out: Record<string, number> = {}
    for (const [name, value] of pairs) {
      if (!names.includes(name)) throw new ConfigError(key, `unknown name ${show(name)}: expected one of ${names.join(', ')}`)
      out[name] = int(1, 16)(typeof value === 'number' ? value : String(value), `${key} ${name}`)
    }
    return out
  }
}
