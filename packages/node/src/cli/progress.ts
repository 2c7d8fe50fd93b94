/**
 * A one-line progress bar on stderr for long transfers. It draws only when
 * stderr is a terminal (so pipes and logs stay clean) and at most ten times a
 * second; `total` may be unknown (stdin), then it shows bytes and rate.
 */
export class ProgressBar {
  private total: number | undefined
  private readonly label: string
  private readonly stream: NodeJS.WriteStream
  private readonly enabled: boolean
  private readonly started = Date.now()
  private done = 0
  private lastDraw = 0

  constructor (label: string, total: number | undefined, opts: { stream?: NodeJS.WriteStream, enabled?: boolean } = {}) {
    this.label = label
    this.total = total
    this.stream = opts.stream ?? process.stderr
    this.enabled = opts.enabled ?? this.stream.isTTY === true
  }

  /** Sets the total once it is known (a fetch learns it from the root). */
  setTotal (total: number | undefined): void {
    if (total != null) this.total = total
  }

  tick (bytes: number): void {
    this.done += bytes
    const now = Date.now()
    if (this.enabled && now - this.lastDraw >= 100) {
      this.lastDraw = now
      this.draw(now)
    }
  }

  finish (): void {
    if (!this.enabled) return
    this.draw(Date.now())
    this.stream.write('\n')
  }

  private draw (now: number): void {
    const secs = Math.max((now - this.started) / 1000, 0.001)
    const rate = `${formatBytes(this.done / secs)}/s`
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 60))
    let line: string
    if (this.total != null && this.total > 0) {
      const frac = Math.min(1, this.done / this.total)
      const filled = Math.round(frac * width)
      line = `${this.label} [${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(this.done)}/${formatBytes(this.total)} ${rate}`
    } else {
      line = `${this.label} ${formatBytes(this.done)} ${rate}`
    }
    this.stream.write(`\r${line}\x1b[K`)
  }
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`
}
