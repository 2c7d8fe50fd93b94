#!/usr/bin/env node
// Runs every compiled test file with Node's own test runner. Node 20 has no
// glob support in `node --test`, so the files are listed here. Pass paths or
// substrings to run a subset: `node scripts/run-tests.mjs node/test/config`.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const filters = process.argv.slice(2)

function walk (dir, out) {
  if (!existsSync(dir)) return out
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path, out)
    else if (/\.(spec|test)\.js$/.test(name)) out.push(path)
  }
  return out
}

const files = []
for (const pkg of readdirSync(join(root, 'packages'))) walk(join(root, 'packages', pkg, 'dist', 'test'), files)
const selected = files
  .map(f => relative(root, f))
  .filter(f => filters.length === 0 || filters.some(x => f.includes(x)))
  .sort()

if (selected.length === 0) {
  console.error('no test files found: run `pnpm build` first')
  process.exit(1)
}

const result = spawnSync(process.execPath, [
  '--import', './packages/node/dist/src/polyfill.js',
  '--test',
  '--test-reporter=spec',
  `--test-concurrency=${process.env.HEARTH_TEST_CONCURRENCY ?? 2}`,
  '--test-timeout=180000',
  ...selected
], { cwd: root, stdio: 'inherit', env: { ...process.env, HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? 'warn' } })
process.exit(result.status ?? 1)
