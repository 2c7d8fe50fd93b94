import { closeSync, fsyncSync, openSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '@hearth/trust'

const MiB = 1024 * 1024
/** free space is read again after this long (a statfs call per write request would be cheap, but not free) */
const FREE_MAX_AGE_MS = 1000
const CHECK_INTERVAL_MS = 5000
/** the periodic check finds the disk full with less than this free */
const FULL_BELOW = MiB

export interface DiskGuardInit {
  /** the data folder: its file system is the one watched */
  dir: string
  /** bytes held in `reserve` (0: no reserve file) */
  reserveBytes: number
  log: Logger
}

export interface DiskStatus {
  /** bytes free for this user on the data folder's file system; null when it cannot be read */
  free_bytes: number | null
  /** writes are refused (507 ERR_DISK_FULL) until space is freed */
  full: boolean
  full_since: string | null
  reserve_bytes: number
  /** whether the reserve file is in place (it is released while the disk is full) */
  reserve_held: boolean
}

/**
 * Keeps a full disk a state the daemon lives through rather than an outage.
 *
 * SQLite cannot even delete on a full disk (a delete writes its journal
 * first), so a reserve file of `reserveBytes` is kept in the data folder.
 * When a write fails for lack of space (or the disk is found full at start)
 * the reserve is released and the guard turns `full`: writes are refused up
 * front with 507, so that what the reserve freed goes to what frees space —
 * unpinning, the cache's eviction, gc — and not to the next write. Once the
 * file system has the reserve's size and as much again free, the reserve is
 * taken back and writes are accepted again.
 */
export class DiskGuard {
  private readonly dir: string
  private readonly reserveBytes: number
  private readonly log: Logger
  readonly reservePath: string
  private fullSince?: number
  private freeAt = 0
  private freeBytes?: number
  private timer?: ReturnType<typeof setInterval>
  /** times the disk was found full since start */
  fullEvents = 0

  constructor (init: DiskGuardInit) {
    this.dir = init.dir
    this.reserveBytes = init.reserveBytes
    this.log = init.log
    this.reservePath = join(init.dir, 'reserve')
  }

  get full (): boolean { return this.fullSince != null }

  /** Bytes free for this user where the data folder is; undefined when the file system cannot say. */
  free (maxAgeMs = FREE_MAX_AGE_MS): number | undefined {
    const now = Date.now()
    if (now - this.freeAt < maxAgeMs) return this.freeBytes
    try {
      const s = statfsSync(this.dir)
      this.freeBytes = Number(s.bavail) * Number(s.bsize)
    } catch {
      this.freeBytes = undefined
    }
    this.freeAt = now
    return this.freeBytes
  }

  /** Free space the cache may grow into: what is free less the reserve's size, or (while full) less what {@link check} needs to accept writes again. */
  cacheRoom (): number | undefined {
    const free = this.free()
    if (free === undefined) return undefined
    return free - (this.full ? this.recoverAt() : this.reserveBytes)
  }

  private recoverAt (): number {
    return 2 * this.reserveBytes + MiB
  }

  /** At start, before any store opens: releases the reserve on a full disk, or lays it down when missing. */
  prepare (): void {
    const free = this.free(0)
    // laying the reserve down must leave room to work: as much again as it takes, as check() asks
    if (free !== undefined && (free < MiB || (this.reserveBytes > 0 && !this.reserveHeld() && free < this.recoverAt()))) {
      this.markFull('at start')
      return
    }
    if (!this.takeReserve()) this.markFull('at start, with no room for the reserve')
  }

  start (): void {
    if (this.timer != null) return
    this.timer = setInterval(() => {
      try { this.check() } catch (err: any) { this.log.warn({ err: err?.code ?? err?.message }, 'disk check failed') }
    }, CHECK_INTERVAL_MS)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = undefined
  }

  /** A write failed for lack of space (any store, any file): refuse writes and release the reserve. */
  markFull (where: string): void {
    if (this.fullSince != null) return
    this.fullSince = Date.now()
    this.fullEvents++
    const released = this.releaseReserve()
    this.freeAt = 0
    this.log.warn({ where, reserve_released: released, free_bytes: this.free(0) ?? null },
      'the disk is full: writes answer 507 ERR_DISK_FULL until space is freed (hearth pin rm, then hearth gc)')
  }

  /**
   * Not full: whether the disk has filled since (under 1 MiB free).
   * While full: whether enough space came back (the reserve's size twice
   * over) to take the reserve again and accept writes. Returns `full`.
   */
  check (): boolean {
    if (this.fullSince == null) {
      // whatever filled it, and whichever store would fail first: refuse writes before SQLite has to
      const free = this.free()
      if (free !== undefined && free < FULL_BELOW) this.markFull(`under ${FULL_BELOW / MiB} MiB free`)
      return this.full
    }
    // read afresh: called after a gc, whose freed pages the cached figure would not show
    const free = this.free(0)
    if (free === undefined || free < this.recoverAt()) return true
    if (!this.takeReserve()) return true
    const was = this.fullSince
    this.fullSince = undefined
    this.log.info({ free_bytes: this.free(0) ?? null, full_for_s: Math.round((Date.now() - was) / 1000) }, 'the disk has room again: writes are accepted')
    return false
  }

  status (): DiskStatus {
    return {
      free_bytes: this.free() ?? null,
      full: this.full,
      full_since: this.fullSince != null ? new Date(this.fullSince).toISOString() : null,
      reserve_bytes: this.reserveBytes,
      reserve_held: this.reserveHeld()
    }
  }

  private reserveHeld (): boolean {
    try { return statSync(this.reservePath).size >= this.reserveBytes } catch { return false }
  }

  /** Writes the reserve file (real blocks, not a sparse file) unless it is there; false when the disk has no room for it. */
  private takeReserve (): boolean {
    if (this.reserveBytes === 0 || this.reserveHeld()) return true
    let fd: number | undefined
    try {
      fd = openSync(this.reservePath, 'w', 0o600)
      const chunk = Buffer.alloc(Math.min(MiB, this.reserveBytes))
      for (let done = 0; done < this.reserveBytes;) {
        const n = writeSync(fd, chunk, 0, Math.min(chunk.length, this.reserveBytes - done))
        done += n
      }
      fsyncSync(fd)
      closeSync(fd)
      this.freeAt = 0
      return true
    } catch (err: any) {
      if (fd !== undefined) try { closeSync(fd) } catch { /* closed */ }
      try { unlinkSync(this.reservePath) } catch { /* never made */ }
      this.freeAt = 0
      if (err?.code !== 'ENOSPC' && err?.code !== 'EDQUOT') this.log.warn({ err: err?.code ?? err?.message }, 'could not write the disk reserve file')
      return false
    }
  }

  private releaseReserve (): boolean {
    try {
      unlinkSync(this.reservePath)
      return true
    } catch {
      return false
    }
  }
}
