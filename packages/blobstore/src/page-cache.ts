import { createRequire } from 'node:module'

type DropPages = (fd: number, offset: number, length: number) => boolean

let loaded: DropPages | null | undefined

/**
 * `posix_fadvise(POSIX_FADV_DONTNEED)` from the workspace's small addon
 * (`@hearth/page-cache`), loaded on first use; undefined where it was not
 * built or cannot load, and then pages simply stay cached.
 */
export function pageDropper (): DropPages | undefined {
  if (loaded === undefined) {
    try {
      loaded = (createRequire(import.meta.url)('@hearth/page-cache') as { dropPages: DropPages }).dropPages
    } catch {
      loaded = null
    }
  }
  return loaded ?? undefined
}
