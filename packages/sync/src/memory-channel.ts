import type { MessageChannel } from './index.js'

export interface MemoryChannelOptions {
  /** delay before each message is delivered (a slow peer); default 0 (next macrotask) */
  delayMs?: number
}

/**
 * Two connected in-memory {@link MessageChannel}s. Messages are delivered
 * in order; each `send` resolves once the other side's handler ran, so a
 * delay models a slow peer that pushes back on its sender. For tests and
 * benchmarks.
 */
export function createMemoryChannelPair (a: MemoryChannelOptions = {}, b: MemoryChannelOptions = a): [MessageChannel, MessageChannel] {
  const left = new MemoryChannel(a.delayMs ?? 0)
  const right = new MemoryChannel(b.delayMs ?? 0)
  left.remote = right
  right.remote = left
  return [left, right]
}

class MemoryChannel implements MessageChannel {
  remote!: MemoryChannel
  private handler?: (m: Uint8Array) => void
  private readonly closeHandlers: Array<() => void> = []
  private readonly backlog: Uint8Array[] = []
  private tail: Promise<void> = Promise.resolve()
  closed = false

  constructor (private readonly delayMs: number) {}

  send (message: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error('channel closed'))
    const copy = Uint8Array.from(message)
    // chain sends so a delay keeps messages in order and one slow message holds back the next
    this.tail = this.tail.then(async () => {
      // setTimeout(0) waits at least a millisecond; an undelayed channel only yields to the event loop
      await new Promise<void>(resolve => this.delayMs > 0 ? setTimeout(resolve, this.delayMs) : setImmediate(resolve))
      if (!this.closed) this.remote.deliver(copy)
    })
    return this.tail
  }

  deliver (message: Uint8Array): void {
    if (this.handler == null) this.backlog.push(message)
    else this.handler(message)
  }

  onMessage (handler: (m: Uint8Array) => void): void {
    this.handler = handler
    for (const m of this.backlog.splice(0)) handler(m)
  }

  onClose (handler: () => void): void {
    if (this.closed) handler()
    else this.closeHandlers.push(handler)
  }

  close (): void {
    this.shut()
    this.remote.shut()
  }

  private shut (): void {
    if (this.closed) return
    this.closed = true
    for (const h of this.closeHandlers.splice(0)) h()
  }
}
