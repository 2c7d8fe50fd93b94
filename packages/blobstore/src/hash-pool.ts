import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'

/** What the main thread asks a hashing thread (hash-worker.ts) */
export interface DigestsJob { fd: number, position: number, leafSize: number, count: number }
export type HashRequest = DigestsJob & { id: number }

export type DigestsReply = { id: number, ok: true, digests: Uint8Array, sizes: number[] }
export type HashReply = DigestsReply | { id: number, ok: false, code?: string, message: string }

interface Thread {
  worker: Worker
  pending: Map<number, { resolve: (r: HashReply) => void, reject: (e: Error) => void }>
}

/** Idle threads are stopped after this long, ms (they cost ~10 MB each) */
const IDLE_MS = 10_000
/** How long a new thread may take to load, ms */
const START_TIMEOUT_MS = 10_000

/** The hashing thread's script: the package export when it resolves (it does from a bundle too), else beside this file */
function workerUrl (): URL {
  try {
    return new URL(import.meta.resolve('@hearth/blobstore/hash-worker'))
  } catch {
    return new URL('./hash-worker.js', import.meta.url)
  }
}

/**
 * A few threads that read and hash runs of file leaves (BLAKE3) off the main
 * thread, for `hashFile`.
 * Threads start on first use and stop after 10 s idle; they keep the process
 * alive only while a request is outstanding. When a thread cannot start (no
 * worker support, the script missing), `ready()` says false and callers hash
 * on their own thread instead.
 */
export class HashPool {
  readonly threads: number
  private pool: Thread[] = []
  private starting?: Promise<boolean>
  private nextId = 1
  private outstanding = 0
  private idleTimer?: NodeJS.Timeout
  /** requests the threads answered */
  completed = 0
  /** why the threads could not start, once they could not */
  failure?: Error

  constructor (threads: number) {
    if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError('a hash pool needs at least one thread')
    this.threads = threads
  }

  /** Starts the threads if they are not running; false when they cannot run here */
  async ready (): Promise<boolean> {
    if (this.failure != null) return false
    if (this.pool.length === this.threads) return true
    this.starting ??= this.start().finally(() => { this.starting = undefined })
    return await this.starting
  }

  private async start (): Promise<boolean> {
    const url = workerUrl()
    try {
      this.pool = await Promise.all(Array.from({ length: this.threads }, async () => await this.spawn(url)))
      return true
    } catch (err: any) {
      this.failure = err instanceof Error ? err : new Error(String(err))
      await this.stop()
      return false
    }
  }

  private async spawn (url: URL): Promise<Thread> {
    const worker = new Worker(url)
    const thread: Thread = { worker, pending: new Map() }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('hash thread did not start')) }, START_TIMEOUT_MS)
      // the thread says so once its imports (the native hash) have loaded
      worker.once('message', () => { clearTimeout(timer); resolve() })
      worker.once('error', (err) => { clearTimeout(timer); reject(err) })
      worker.once('exit', (code) => { clearTimeout(timer); reject(new Error(`hash thread exited with code ${code} while starting`)) })
    })
    worker.unref()
    worker.on('message', (reply: HashReply) => { this.settle(thread, reply) })
    const fail = (err: Error): void => {
      // a thread that dies takes its requests with it; the next use starts a new one
      this.pool = this.pool.filter(t => t !== thread)
      for (const p of thread.pending.values()) p.reject(err)
      this.outstanding -= thread.pending.size
      thread.pending.clear()
      this.refreshRef()
    }
    worker.on('error', fail)
    worker.on('exit', (code) => { fail(new Error(`hash thread exited with code ${code}`)) })
    return thread
  }

  private settle (thread: Thread, reply: HashReply): void {
    const p = thread.pending.get(reply.id)
    if (p == null) return
    thread.pending.delete(reply.id)
    this.outstanding--
    this.completed++
    this.refreshRef()
    p.resolve(reply)
  }

  /** Threads hold the process open only while something waits on them */
  private refreshRef (): void {
    for (const t of this.pool) {
      if (this.outstanding > 0) t.worker.ref()
      else t.worker.unref()
    }
    clearTimeout(this.idleTimer)
    if (this.outstanding === 0 && this.pool.length > 0) {
      this.idleTimer = setTimeout(() => { void this.stop() }, IDLE_MS)
      this.idleTimer.unref()
    }
  }

  /** Runs one request on the least busy thread */
  async run (job: DigestsJob): Promise<DigestsReply> {
    if (!await this.ready()) throw this.failure ?? new Error('hash threads are not available')
    const thread = this.pool.reduce((a, b) => b.pending.size < a.pending.size ? b : a)
    const id = this.nextId++
    const req: HashRequest = { ...job, id }
    const reply = await new Promise<HashReply>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject })
      this.outstanding++
      this.refreshRef()
      thread.worker.postMessage(req)
    })
    if (!reply.ok) {
      const err: Error & { code?: string } = new Error(reply.message)
      if (reply.code != null) err.code = reply.code
      throw err
    }
    return reply
  }

  /** Stops the threads (pending requests fail); a later request starts them again */
  async stop (): Promise<void> {
    clearTimeout(this.idleTimer)
    const threads = this.pool
    this.pool = []
    await Promise.all(threads.map(async t => await t.worker.terminate()))
  }
}

let shared: HashPool | undefined

/** The process's hash pool: a thread per core beside the main thread's, at least one and at most two */
export function sharedHashPool (): HashPool {
  shared ??= new HashPool(Math.max(1, Math.min(2, availableParallelism() - 1)))
  return shared
}
