import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runLifecycle } from './lifecycle-gate.js'

describe('lifecycle gate', () => {
  it('keeps every acknowledged blob, document edit and the PeerId through 3 cycles of stop, SIGKILL and restart', async () => {
    const report = await runLifecycle({ cycles: 3 })
    assert.equal(report.cycles, 3)
    assert.equal(report.blobs, 18)
    assert.equal(report.documents, 9)
    assert.equal(report.kills, 1)
    assert.equal(report.readyMs.length, 3)
  })
})
