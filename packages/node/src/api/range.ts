/**
 * One byte range from a `Range` header, resolved against the blob's size.
 * Following RFC 9110: a header we cannot parse, or one asking for several
 * ranges, is ignored (the whole body is sent); a syntactically valid range
 * that starts past the end is unsatisfiable.
 */
export type RangeResult =
  | { kind: 'none' }
  | { kind: 'range', offset: number, length: number }
  | { kind: 'unsatisfiable' }

const MAX_HEADER = 256

export function parseRange (header: string | undefined, size: number): RangeResult {
  if (header == null || header.length > MAX_HEADER) return { kind: 'none' }
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (m == null) return { kind: 'none' }
  const [, a, b] = m
  if (a === '' && b === '') return { kind: 'none' }
  if (a === '') {
    // suffix range: the last b bytes
    const n = Number(b)
    if (!Number.isSafeInteger(n)) return { kind: 'none' }
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' }
    const length = Math.min(n, size)
    return { kind: 'range', offset: size - length, length }
  }
  const start = Number(a)
  const end = b === '' ? Number.MAX_SAFE_INTEGER : Number(b)
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return { kind: 'none' }
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'range', offset: start, length: Math.min(end, size - 1) - start + 1 }
}
