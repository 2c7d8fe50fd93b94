import type { CID } from 'multiformats/cid'

/**
 * The blocks a fetch still has to ask for, shared by its workers (a few per
 * provider). A worker takes a batch; what it did not receive goes back to the
 * front. A worker that finds the queue empty waits while others are in
 * flight, since their blocks may reveal children (a DAG is learnt as it
 * arrives); when nothing is queued and nothing is in flight, the fetch has
 * asked for everything it knows of.
 */
export class FetchQueue {
  private readonly items: CID[] = []
  private readonly queued = new Set<string>()
  private inFlight = 0
  private waiters: Array<() => void> = []
  private stopped = false
  /** why the fetch was stopped, when something decided it cannot go on (a quota, a hook) */
  error?: Error

  constructor (initial: CID[]) { this.push(initial) }

  get size (): number { return this.items.length }

  push (cids: CID[]): void {
    for (const c of cids) {
      const key = c.toString()
      if (this.queued.has(key)) continue
      this.queued.add(key)
      this.items.push(c)
    }
    this.wake()
  }

  /** Up to `n` blocks to ask for, or undefined when the fetch has nothing more to ask (or stopped). */
  async take (n: number): Promise<CID[] | undefined> {
    for (;;) {
      if (this.stopped) return undefined
      if (this.items.length > 0) {
        this.inFlight++
        const batch = this.items.splice(0, n)
        for (const c of batch) this.queued.delete(c.toString())
        return batch
      }
      if (this.inFlight === 0) return undefined
      await new Promise<void>(resolve => this.waiters.push(resolve))
    }
  }

  /** A batch is done; `unreceived` goes back to the front of the queue. */
  done (unreceived: CID[]): void {
    this.inFlight--
    const back = unreceived.filter(c => !this.queued.has(c.toString()))
    for (const c of back) this.queued.add(c.toString())
    this.items.unshift(...back)
    this.wake()
  }

  /** Stops the fetch for a reason its caller is told of. */
  fail (err: Error): void {
    this.error ??= err
    this.stop()
  }

  /** Wakes every waiting worker so it can see that the fetch stopped. */
  stop (): void {
    this.stopped = true
    this.wake()
  }

  private wake (): void {
    const w = this.waiters
    this.waiters = []
    for (const resolve of w) resolve()
  }
}
