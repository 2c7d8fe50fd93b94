import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'

/**
 * A per-key rate limit (a key is a peer): `points` in each window of
 * `perSeconds`, on rate-limiter-flexible's in-memory limiter. A key's record
 * goes when its window ends, so memory follows the peers active in the last
 * window, fresh identities included, never the peers ever seen.
 */
export class RateLimit {
  private readonly limiter: RateLimiterMemory

  constructor (readonly init: { points: number, perSeconds: number }) {
    this.limiter = new RateLimiterMemory({ points: init.points, duration: init.perSeconds })
  }

  /** Spends `cost` of `key`'s points: ok, or not with the time until its window ends */
  async take (key: string, cost = 1): Promise<{ ok: boolean, retryMs: number }> {
    try {
      await this.limiter.consume(key, cost)
      return { ok: true, retryMs: 0 }
    } catch (res) {
      if (res instanceof RateLimiterRes) return { ok: false, retryMs: res.msBeforeNext }
      throw res
    }
  }
}
