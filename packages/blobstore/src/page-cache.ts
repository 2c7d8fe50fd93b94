import { createRequire } from 'node:module'

type DropPages = (fd: number, offset: number, length: number) => boolean
interface Addon {
  dropPages: DropPages
  setMallocThresholds?: (mmapBytes: number, trimBytes: number) => boolean
}

let loaded: Addon | null | undefined

/** The workspace's small addon (`@hearth/page-cache`), loaded on first use; null where it was not built or cannot load */
function addon (): Addon | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@hearth/page-cache') as Addon
    } catch {
      loaded = null
    }
  }
  return loaded
}

/**
 * `posix_fadvise(POSIX_FADV_DONTNEED)` from the addon; undefined where it
 * cannot load, and then pages simply stay cached.
 */
export function pageDropper (): DropPages | undefined {
  return addon()?.dropPages
}

/** glibc's `mallopt` thresholds through the addon; false where it cannot load or the C library is not glibc */
export function setMallocThresholds (mmapBytes: number, trimBytes: number): boolean {
  return addon()?.setMallocThresholds?.(mmapBytes, trimBytes) ?? false
}
