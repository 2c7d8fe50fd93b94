import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The @hearth/node package version. Found by walking up from this module to
 * the package's own package.json, so it works from dist/src and from the
 * esbuild bundle (whose chunks sit at another depth).
 */
function findVersion (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === '@hearth/node' && typeof pkg.version === 'string') return pkg.version
    } catch { /* keep walking up */ }
    dir = dirname(dir)
  }
  return '0.0.0'
}

export const VERSION: string = findVersion()
