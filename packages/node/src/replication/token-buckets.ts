/**
 * One token bucket per key (a peer): `capacity` tokens at most, refilled at
 * `refillPerSecond`. A request that finds too few tokens is refused. Buckets
 * that have refilled completely carry no information and are dropped, so the
 * map stays as small as the set of peers that are busy right now.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private readonly capacity: number
  private readonly refillPerMs: number

  constructor (init: { capacity: number, refillPerSecond: number }) {
    this.capacity = init.capacity
    this.refillPerMs = init.refillPerSecond / 1000
  }

  take (key: string, cost = 1, now = Date.now()): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.capacity, at: now }
    b.tokens = Math.min(this.capacity, b.tokens + (now - b.at) * this.refillPerMs)
    b.at = now
    const ok = b.tokens >= cost
    if (ok) b.tokens -= cost
    this.buckets.set(key, b)
    if (this.buckets.size > 10_000) this.sweep(now)
    return ok
  }

  private sweep (now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * this.refillPerMs >= this.capacity) this.buckets.delete(k)
  }
}
