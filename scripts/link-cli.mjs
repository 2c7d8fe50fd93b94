#!/usr/bin/env node
// Puts `hearth` on PATH: a symbolic link to this checkout's built CLI in a
// bin folder, `--dir <folder>` or $HEARTH_BIN_DIR, else ~/.local/bin (made
// if missing; on PATH on most Linux desktops, and for root /usr/local/bin).
// Run it as `pnpm link-cli`, which builds first. The link follows the
// checkout: `git pull && pnpm build` updates the command too.
import { existsSync, lstatSync, mkdirSync, symlinkSync, unlinkSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const target = fileURLToPath(new URL('../packages/node/dist/bundle/hearth.mjs', import.meta.url))
if (!existsSync(target)) {
  console.error(`link-cli: ${target} is missing: run \`pnpm build\` first (\`pnpm link-cli\` does)`)
  process.exit(1)
}
const i = process.argv.indexOf('--dir')
const dir = resolve(i >= 0 ? process.argv[i + 1] ?? '' : process.env.HEARTH_BIN_DIR ?? (process.getuid?.() === 0 ? '/usr/local/bin' : join(homedir(), '.local', 'bin')))
mkdirSync(dir, { recursive: true })
const link = join(dir, 'hearth')
let existing
try { existing = lstatSync(link) } catch { existing = undefined }
if (existing != null) {
  if (!existing.isSymbolicLink()) {
    console.error(`link-cli: ${link} exists and is not a link; remove it or pick another folder with --dir`)
    process.exit(1)
  }
  unlinkSync(link)
}
symlinkSync(target, link)
console.log(`${link} -> ${target}`)
const onPath = (process.env.PATH ?? '').split(delimiter).some(p => p !== '' && resolve(p) === dir)
if (!onPath) console.log(`${dir} is not on PATH: add \`export PATH="${dir}:$PATH"\` to your shell's profile`)
