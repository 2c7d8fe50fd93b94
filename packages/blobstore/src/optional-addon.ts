import { createRequire } from 'node:module'

/**
 * A loader for one of the workspace's native addons (`@hearth/page-cache`,
 * `@hearth/leaf-hash`): it loads the addon on the first call and returns
 * null, then and after, where the addon was not built or cannot load, so
 * the store can go on without it.
 */
export function optionalAddon<T> (name: string): () => T | null {
  let loaded: T | null | undefined
  return () => {
    if (loaded === undefined) {
      try {
        loaded = createRequire(import.meta.url)(name) as T
      } catch {
        loaded = null
      }
    }
    return loaded
  }
}
