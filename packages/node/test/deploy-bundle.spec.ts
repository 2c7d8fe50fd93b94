// What the image and install.sh ship is @hearth/node laid out by `pnpm deploy
// --prod`: its bundle plus node_modules holding only the package's own
// dependencies. Every package the bundle leaves external must be among them,
// resolve from dist/bundle, and (for the native addons) load.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { NODE_PKG } from './deploy-helpers.js'
import { BIN } from './helpers.js'

describe('the bundle\'s external packages', () => {
  // esbuild leaves these out of the bundle (native addons, packages that read
  // their own files); the daemon then loads them from node_modules next to
  // dist/bundle, where `pnpm deploy --prod` (the image, install.sh) puts only
  // @hearth/node's own dependencies
  const source = readFileSync(join(NODE_PKG, 'scripts', 'bundle.mjs'), 'utf8')
  const list = /external:\s*\[([^\]]*)\]/.exec(source)
  const external = list == null ? [] : [...list[1].matchAll(/'([^']+)'|"([^"]+)"/g)].map(m => m[1] ?? m[2])
  const deps = (JSON.parse(readFileSync(join(NODE_PKG, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies

  it('are dependencies of @hearth/node itself', () => {
    assert.ok(external.includes('better-sqlite3'), `read the external list from bundle.mjs: ${external.join(', ')}`)
    for (const name of external) assert.ok(name in deps, `${name} is external in bundle.mjs but not a dependency of @hearth/node`)
  })

  it('resolve from the bundle, and the native addons load', (t) => {
    const bundleDir = dirname(BIN)
    if (!existsSync(BIN)) {
      t.skip(`no bundle at ${BIN}: run \`pnpm build\` first`)
      return
    }
    const require = createRequire(join(bundleDir, 'hearth.mjs'))
    for (const name of external) {
      assert.ok(resolvesFrom(bundleDir, name), `${name} resolves from ${bundleDir}`)
    }
    const Database = require('better-sqlite3') as new (path: string) => { close: () => void }
    new Database(':memory:').close()
    if (external.includes('@c4312/blake3-native')) require('@c4312/blake3-native')
  })
})

function resolvesFrom (dir: string, name: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', name, 'package.json'))) return true
    if (dirname(d) === d) return false
  }
}
