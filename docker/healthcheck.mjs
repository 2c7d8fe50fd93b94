#!/usr/bin/env node
// The container's HEALTHCHECK: exit 0 when GET /health answers 200, else 1.
// Slim images have no curl, so this uses Node's own fetch. It asks the daemon
// where it listens ($HEARTH_DATA/api.json, written once the API is up), so a
// port set in the config file is found too; before that file exists it tries
// HEARTH_HTTP_HOST/HEARTH_HTTP_PORT. A wildcard bind address is reached
// through loopback.
/* global fetch, AbortSignal */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const TIMEOUT_MS = 3000

function loopback (host) {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::' || host === '[::]') return '[::1]'
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

function baseUrl (env) {
  try {
    const info = JSON.parse(readFileSync(join(env.HEARTH_DATA ?? '/data', 'api.json'), 'utf8'))
    const url = new URL(info.url)
    url.hostname = loopback(url.hostname)
    return url.origin
  } catch {
    return `http://${loopback(env.HEARTH_HTTP_HOST ?? '127.0.0.1')}:${env.HEARTH_HTTP_PORT ?? 7878}`
  }
}

const url = `${baseUrl(process.env)}/health`
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) })
  if (!res.ok) {
    process.stderr.write(`${url}: HTTP ${res.status}\n`)
    process.exit(1)
  }
  process.exit(0)
} catch (err) {
  process.stderr.write(`${url}: ${err?.cause?.code ?? err?.name ?? err}\n`)
  process.exit(1)
}
