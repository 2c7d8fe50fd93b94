import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

interface Manifest { name: string, dependencies?: Record<string, string>, devDependencies?: Record<string, string>, peerDependencies?: Record<string, string> }

/** Every file under `dir` whose name ends with one of `exts` */
function files (dir: string, exts: string[]): string[] {
  let out: string[] = []
  let names: string[]
  try { names = readdirSync(dir) } catch { return out }
  for (const name of names) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out = out.concat(files(path, exts))
    else if (exts.some(e => name.endsWith(e))) out.push(path)
  }
  return out
}

/** The packages a source file imports at run time (type-only imports are left out) */
function imported (text: string): string[] {
  const specs: string[] = []
  for (const m of text.matchAll(/^\s*import\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|^\s*export\s+(?!type\s)[^'"]*?\sfrom\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    specs.push(m[1] ?? m[2] ?? m[3] ?? m[4])
  }
  return specs
    .filter(s => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
    .map(s => s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0])
}

describe('package manifests', () => {
  for (const pkg of readdirSync(join(ROOT, 'packages'))) {
    const dir = join(ROOT, 'packages', pkg)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest
    it(`${manifest.name}: what its code imports at run time is a dependency, and each dependency is used`, () => {
      const deps = new Set(Object.keys(manifest.dependencies ?? {}))
      const used = new Set<string>()
      const sources = [...files(join(dir, 'src'), ['.ts', '.mts', '.c']), ...files(join(dir, 'scripts'), ['.mjs', '.js']), ...files(dir, ['binding.gyp', 'index.cjs']).filter(f => !f.includes('node_modules') && !f.includes(`${join(dir, 'build')}`))]
      for (const file of sources) {
        const text = readFileSync(file, 'utf8')
        // named by a loader (an optional addon, the bundle's externals, a native build's include path)
        for (const d of deps) if (text.includes(`'${d}'`) || text.includes(`'${d}/`) || text.includes(`"${d}`) || text.includes(`/${d}/`)) used.add(d)
        if (file.endsWith('.d.ts') || file.endsWith('.c') || file.endsWith('.gyp')) continue
        for (const name of imported(text)) {
          used.add(name)
          // the build scripts may use the workspace's dev tools
          if (!file.includes(`${join(dir, 'scripts')}`)) assert.ok(deps.has(name) || name === manifest.name, `${file.slice(ROOT.length)} imports ${name}, which is not in ${manifest.name}'s dependencies`)
        }
      }
      // a dependency nothing imports is dead weight, unless another dependency needs it as a peer
      const peers = new Set<string>()
      for (const d of deps) {
        try {
          const m = JSON.parse(readFileSync(join(dir, 'node_modules', d, 'package.json'), 'utf8')) as Manifest
          for (const p of Object.keys(m.peerDependencies ?? {})) peers.add(p)
        } catch { /* a package without a manifest of its own here */ }
      }
      for (const d of deps) assert.ok(used.has(d) || peers.has(d), `${manifest.name} depends on ${d}, which nothing in its code imports`)
    })
  }
})
