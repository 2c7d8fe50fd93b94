import { optionalAddon } from './optional-addon.js'

type DropPages = (fd: number, offset: number, length: number) => boolean
interface Addon {
  dropPages: DropPages
  setMallocThresholds?: (mmapBytes: number, trimBytes: number) => boolean
}

/** The workspace's small addon (`@hearth/page-cache`) */
const addon = optionalAddon<Addon>('@hearth/page-cache')

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
