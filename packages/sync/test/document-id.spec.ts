import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { documentIdToBinary, generateAutomergeUrl, parseAutomergeUrl, stringifyAutomergeUrl } from '@automerge/automerge-repo'
import type { AutomergeUrl, BinaryDocumentId, DocumentId } from '@automerge/automerge-repo'
import { fromBytes, generateDocumentId, isDocumentId, parseDocumentId } from '../src/index.js'

describe('document ids', () => {
  it('encode 16 bytes exactly as automerge-repo does', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), bytes => {
      const ours = fromBytes(bytes)
      assert.equal(ours.url, stringifyAutomergeUrl(bytes as BinaryDocumentId))
      assert.deepEqual(documentIdToBinary(ours.id as unknown as DocumentId), bytes)
      assert.deepEqual(parseDocumentId(ours.url).bytes, bytes)
      assert.deepEqual(parseDocumentId(ours.id).bytes, bytes)
    }), { numRuns: 500 })
  })

  it('parse URLs that automerge-repo generates, and the reverse', () => {
    for (let i = 0; i < 100; i++) {
      const url = generateAutomergeUrl()
      const parsed = parseDocumentId(url)
      assert.equal(parsed.url, url)
      assert.equal(parsed.id, parseAutomergeUrl(url).documentId)
      const ours = generateDocumentId()
      assert.equal(parseAutomergeUrl(ours.url as AutomergeUrl).documentId, ours.id)
      assert.ok(isDocumentId(ours.id))
    }
  })

  it('refuse malformed ids with ERR_INVALID_DOCUMENT_ID', () => {
    const good = generateDocumentId().id
    const flipped = good.slice(0, -1) + (good.endsWith('2') ? '3' : '2')
    const short = fromBytesUnchecked(8)
    for (const bad of ['', 'automerge:', 'not-base58-0OIl', flipped, short, 'x'.repeat(200), `${good}#heads`, `automerge:automerge:${good}`]) {
      assert.throws(() => parseDocumentId(bad), { code: 'ERR_INVALID_DOCUMENT_ID' }, bad)
      assert.equal(isDocumentId(bad), false)
    }
    assert.throws(() => fromBytes(new Uint8Array(15)), { code: 'ERR_INVALID_DOCUMENT_ID' })
  })

  it('never throws anything but its own error on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 64 }), s => {
      try {
        parseDocumentId(s)
      } catch (err: any) {
        assert.equal(err.code, 'ERR_INVALID_DOCUMENT_ID')
      }
    }), { numRuns: 2000 })
  })
})

/** a checksum-valid base58check string of the wrong length */
function fromBytesUnchecked (n: number): string {
  return stringifyAutomergeUrl(new Uint8Array(n).fill(7) as BinaryDocumentId).slice('automerge:'.length)
}
