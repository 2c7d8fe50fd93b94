import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ERROR_STATUS } from '../src/api/error-codes.js'

const PACKAGES = fileURLToPath(new URL('../../..', import.meta.url))

async function * sources (dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) yield * sources(p)
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) yield p
  }
}

describe('error codes', () => {
  it('every error class of every package has an HTTP status, so none can become a 500 by omission', async () => {
    const codes = new Map<string, string>()
    for (const pkg of await readdir(PACKAGES)) {
      for await (const file of sources(join(PACKAGES, pkg, 'src'))) {
        for (const m of (await readFile(file, 'utf8')).matchAll(/static readonly code = '(ERR_[A-Z0-9_]+)'/g)) codes.set(m[1], `${pkg}/${file.split(`/${pkg}/`)[1]}`)
      }
    }
    assert.ok(codes.size > 40, `found only ${codes.size} error classes: the scan is broken`)
    const missing = [...codes].filter(([code]) => typeof ERROR_STATUS[code] !== 'number').map(([code, where]) => `${code} (${where})`)
    assert.deepEqual(missing, [])
    for (const [code, status] of Object.entries(ERROR_STATUS)) assert.ok(status >= 400 && status < 600, `${code}: ${status}`)
  })
})
