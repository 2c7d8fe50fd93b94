#!/usr/bin/env node
// Bundles the compiled CLI/daemon (dist/src/bin.js) into dist/bundle/ with
// esbuild. Node resolves and evaluates the ~1,500 small ESM files of libp2p,
// Fastify and TypeBox one by one, which made `hearth daemon` take over 2 s to
// start; one bundle (split per CLI command, so `hearth status` stays light)
// starts in well under one. Native addons and packages that read their own
// files at run time stay external and load from node_modules.
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const outdir = `${root}dist/bundle`
await rm(outdir, { recursive: true, force: true })
await build({
  entryPoints: { hearth: `${root}dist/src/bin.js` },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  // (these must be dependencies of @hearth/node itself, so they resolve from dist/bundle)
  external: ['better-sqlite3', '@c4312/blake3-native', '@hearth/page-cache', '@hearth/leaf-hash', '@fastify/swagger-ui', '@automerge/automerge'],
  // some CommonJS dependencies call require() for Node built-ins
  banner: { js: "import { createRequire as __hearthRequire } from 'node:module'; const require = __hearthRequire(import.meta.url);" }
})
