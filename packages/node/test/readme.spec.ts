import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { CONFIG_OPTIONS } from '../src/index.js'

describe('README', () => {
  it('documents every configuration setting by variable, flag and file key', async () => {
    const readme = await readFile(new URL('../../../../README.md', import.meta.url), 'utf8')
    for (const o of CONFIG_OPTIONS) {
      const row = readme.split('\n').find(line => line.startsWith(`| \`${o.env}\` |`))
      assert.ok(row != null, `README has no row for ${o.env}`)
      assert.ok(row.includes(`\`--${o.flag}\``), `${o.env}: flag --${o.flag}`)
      assert.ok(row.includes(`\`${o.file}\``), `${o.env}: file key ${o.file}`)
    }
  })
})
