import type { Health } from './types.js'

/** How a root's protection reads, from proven copies on nodes other than the one that pinned it (see {@link Health}). */
export function healthOf (copies: number, target: number, repairing: boolean): Health {
  if (copies >= target) return 'ok'
  if (copies === 0) return 'unprotected'
  return repairing ? 'repairing' : 'degraded'
}
