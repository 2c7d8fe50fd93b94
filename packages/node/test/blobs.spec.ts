import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { CarReader } from '@ipld/car'
import type { FastifyInstance } from 'fastify'
import { blake3, matchesCid } from '@hearth/blobstore'
import { buildApi, HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { tempDir, waitFor } from './helpers.js'

const MiB = 1024 * 1024

describe('blob routes', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let node: HearthNode
  let app: FastifyInstance
  let auth: Record<string, string>
  const big = randomBytes(3 * MiB + 12345)
  let bigCid: string

  before(async () => {
    dir = await tempDir()
    node = new HearthNode(loadConfig({ env: { HEARTH_DATA: dir.path, ENABLE_P2P: 'false', HEARTH_QUOTAS: 'gift=2MiB,cache=1GiB' } }), { logger: silentLogger })
    await node.start()
    app = await buildApi({ node })
    auth = { authorization: `Bearer ${node.token}` }
    const res = await app.inject({ method: 'POST', url: '/blob?layer=reciprocal', headers: { ...auth, 'content-type': 'video/mp4' }, payload: big })
    assert.equal(res.statusCode, 201, res.body)
    bigCid = res.json().cid
  })
  after(async () => {
    await app?.close()
    await node?.stop()
    await dir.remove()
  })

  it('adds a blob and answers with its CID, size and layer', async () => {
    const small = Buffer.from('hello hearth\n')
    const res = await app.inject({ method: 'POST', url: '/blob', headers: auth, payload: small })
    assert.equal(res.statusCode, 201)
    const body = res.json()
    assert.equal(body.size, small.length)
    assert.equal(body.layer, 'sovereign')
    assert.equal(res.headers.location, `/blob/${body.cid}`)
    const { CID } = await import('multiformats/cid')
    assert.equal(body.cid, CID.createV1(0x55, await blake3.digest(small)).toString(), 'a small blob is one raw block named by its BLAKE3 digest')
    assert.ok(bigCid.startsWith('bafyb4'), 'a larger blob is a dag-pb root')
  })

  it('serves the bytes back with caching and sandboxing headers', async () => {
    const res = await app.inject({ url: `/blob/${bigCid}` })
    assert.equal(res.statusCode, 200)
    assert.ok(res.rawPayload.equals(big))
    assert.equal(res.headers['content-type'], 'video/mp4')
    assert.equal(res.headers['content-length'], String(big.length))
    assert.equal(res.headers.etag, `"${bigCid}"`)
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable')
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
    assert.match(String(res.headers['content-security-policy']), /sandbox/)
    assert.equal(res.headers['accept-ranges'], 'bytes')

    const head = await app.inject({ method: 'HEAD', url: `/blob/${bigCid}` })
    assert.equal(head.statusCode, 200)
    assert.equal(head.headers['content-length'], String(big.length))
    assert.equal(head.rawPayload.length, 0)

    const cached = await app.inject({ url: `/blob/${bigCid}`, headers: { 'if-none-match': `"${bigCid}"` } })
    assert.equal(cached.statusCode, 304)
    assert.equal(cached.rawPayload.length, 0)
  })

  it('serves single byte ranges, across leaf boundaries too', async () => {
    const cases: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 1],
      ['bytes=100-199', 100, 100],
      [`bytes=${MiB - 10}-${MiB + 9}`, MiB - 10, 20],
      [`bytes=${2 * MiB}-`, 2 * MiB, big.length - 2 * MiB],
      ['bytes=-500', big.length - 500, 500],
      [`bytes=${big.length - 1}-${big.length + 1000}`, big.length - 1, 1]
    ]
    for (const [range, offset, length] of cases) {
      const res = await app.inject({ url: `/blob/${bigCid}`, headers: { range } })
      assert.equal(res.statusCode, 206, range)
      assert.equal(res.headers['content-range'], `bytes ${offset}-${offset + length - 1}/${big.length}`, range)
      assert.ok(res.rawPayload.equals(big.subarray(offset, offset + length)), range)
    }
    const unsat = await app.inject({ url: `/blob/${bigCid}`, headers: { range: `bytes=${big.length}-` } })
    assert.equal(unsat.statusCode, 416)
    assert.equal(unsat.json().error, 'ERR_RANGE_NOT_SATISFIABLE')
    assert.equal(unsat.headers['content-range'], `bytes */${big.length}`)
    // unparseable or multiple ranges are ignored: the whole blob
    for (const range of ['bytes=a-b', 'bytes=0-1,5-6', 'items=0-1']) {
      const res = await app.inject({ url: `/blob/${bigCid}`, headers: { range } })
      assert.equal(res.statusCode, 200, range)
    }
  })

  it('describes a blob in /blob/:cid/info', async () => {
    const info = (await app.inject(`/blob/${bigCid}/info`)).json()
    assert.equal(info.cid, bigCid)
    assert.equal(info.size, big.length)
    assert.equal(info.blocks, 5)
    assert.equal(info.content_type, 'video/mp4')
    assert.deepEqual(info.layers, ['reciprocal'])
    assert.equal(info.pins[0].layer, 'reciprocal')
  })

  it('answers the trustless gateway formats, hash-checkable by the client', async () => {
    const raw = await app.inject({ url: `/ipfs/${bigCid}?format=raw` })
    assert.equal(raw.statusCode, 200)
    assert.equal(raw.headers['content-type'], 'application/vnd.ipld.raw')
    const { CID } = await import('multiformats/cid')
    assert.ok(matchesCid(CID.parse(bigCid), raw.rawPayload))

    const car = await app.inject({ url: `/ipfs/${bigCid}`, headers: { accept: 'application/vnd.ipld.car' } })
    assert.equal(car.statusCode, 200)
    assert.match(String(car.headers['content-type']), /^application\/vnd\.ipld\.car/)
    const reader = await CarReader.fromBytes(car.rawPayload)
    assert.deepEqual((await reader.getRoots()).map(String), [bigCid])
    let blocks = 0
    let leafBytes = 0
    for await (const block of reader.blocks()) {
      assert.ok(matchesCid(block.cid as any, block.bytes), `block ${block.cid.toString()} hashes to its CID`)
      blocks++
      if (block.cid.code === 0x55) leafBytes += block.bytes.length
    }
    assert.equal(blocks, 5)
    assert.equal(leafBytes, big.length)

    const plain = await app.inject({ url: `/ipfs/${bigCid}` })
    assert.ok(plain.rawPayload.equals(big))
    const bad = await app.inject({ url: `/ipfs/${bigCid}?format=tar` })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().error, 'ERR_UNSUPPORTED_FORMAT')
  })

  it('pins, lists and unpins', async () => {
    const add = await app.inject({ method: 'POST', url: '/blob?layer=cache', headers: auth, payload: 'pin me' })
    const cid = add.json().cid
    const pin = await app.inject({ method: 'POST', url: '/pins', headers: auth, payload: { cid, layer: 'invested', owner: 'agent-1' } })
    assert.equal(pin.statusCode, 201, pin.body)
    assert.equal(pin.json().layer, 'invested')
    const list = (await app.inject(`/pins?layer=invested`)).json().pins
    assert.deepEqual(list.map((p: any) => [p.cid, p.owner]), [[cid, 'agent-1']])
    const rm = await app.inject({ method: 'DELETE', url: `/pins/${cid}?layer=invested`, headers: auth })
    assert.deepEqual(rm.json(), { schema_version: '1.0', removed: 1 })
    const again = await app.inject({ method: 'DELETE', url: `/pins/${cid}`, headers: auth })
    assert.equal(again.statusCode, 404)
    assert.equal(again.json().error, 'ERR_PIN_NOT_FOUND')
    assert.deepEqual((await app.inject(`/blob/${cid}/info`)).json().layers, ['cache'])
  })

  it('reports use and quota per layer in /storage and /metrics', async () => {
    const s = (await app.inject('/storage')).json()
    assert.equal(s.layers.gift.quota_bytes, 2 * MiB)
    assert.equal(s.layers.sovereign.quota_bytes, null)
    assert.ok(s.layers.reciprocal.used_bytes >= big.length)
    assert.ok(s.blocks.count >= 5)
    const m = (await app.inject('/metrics')).body
    assert.match(m, /hearth_storage_quota_bytes\{layer="gift"\} 2097152/)
    assert.match(m, /hearth_storage_used_bytes\{layer="reciprocal"\} \d{7,}/)
    assert.match(m, /hearth_blocks\{state="stored"\} \d+/)
  })

  it('refuses bad input with a code and changes nothing', async () => {
    const before = (await app.inject('/storage')).json().blocks
    const cases: Array<[any, number, string]> = [
      [{ method: 'POST', url: '/blob', payload: 'x' }, 401, 'ERR_UNAUTHORIZED'],
      [{ method: 'POST', url: '/blob?layer=attic', headers: auth, payload: 'x' }, 400, 'ERR_VALIDATION'],
      [{ method: 'POST', url: '/blob', headers: { ...auth, 'content-type': 'not a type' }, payload: 'x' }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      [{ method: 'POST', url: '/blob?layer=gift', headers: auth, payload: randomBytes(3 * MiB) }, 507, 'ERR_QUOTA_EXCEEDED'],
      [{ url: '/blob/not-a-cid' }, 400, 'ERR_INVALID_CID'],
      [{ url: '/blob/bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab5' }, 400, 'ERR_INVALID_CID'],
      [{ url: '/blob/bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4' }, 404, 'ERR_BLOB_NOT_FOUND'],
      [{ url: '/blob/bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4/info' }, 404, 'ERR_BLOB_NOT_FOUND'],
      [{ url: '/ipfs/bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4?format=raw' }, 404, 'ERR_BLOCK_NOT_FOUND'],
      [{ url: '/ipfs/bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4?format=car' }, 404, 'ERR_BLOB_NOT_FOUND'],
      [{ method: 'POST', url: '/pins', headers: auth, payload: { cid: 'bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4', layer: 'gift' } }, 404, 'ERR_BLOB_NOT_FOUND'],
      [{ method: 'POST', url: '/pins', headers: auth, payload: { cid: bigCid, layer: 'cache' } }, 400, 'ERR_VALIDATION'],
      [{ method: 'POST', url: '/pins', headers: auth, payload: { cid: bigCid, layer: 'gift' } }, 507, 'ERR_QUOTA_EXCEEDED'],
      [{ method: 'DELETE', url: '/pins/nope', headers: auth }, 400, 'ERR_INVALID_CID']
    ]
    for (const [req, status, code] of cases) {
      const res = await app.inject(req)
      assert.equal(res.statusCode, status, `${req.method ?? 'GET'} ${req.url}: ${res.body.slice(0, 200)}`)
      assert.equal(res.json().error, code, `${req.method ?? 'GET'} ${req.url}`)
    }
    await node.blobs.gc()
    const afterGc = (await app.inject('/storage')).json().blocks
    assert.equal(afterGc.count, before.count, 'the refused upload left no blocks')
    assert.equal(afterGc.unreferenced, 0)
  })

  it('leaves nothing visible or leaked when an upload is cut off midway', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port
    const before = (await node.blobs.usage()).blocks
    const roots = (await node.blobs.list()).length
    const chunk = randomBytes(MiB)
    await new Promise<void>(resolve => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/blob', headers: { ...auth, 'content-length': String(20 * MiB) } })
      req.on('error', () => resolve())
      req.on('response', () => resolve())
      let sent = 0
      const pump = (): void => {
        while (sent < 5) {
          sent++
          if (!req.write(chunk)) { req.once('drain', pump); return }
        }
        // 5 of the promised 20 MiB, then the client vanishes
        setTimeout(() => { req.destroy(); resolve() }, 200)
      }
      pump()
    })
    await waitFor(async () => (await node.blobs.usage()).sessions === 0, 10_000, 'the aborted add to release its session')
    assert.equal((await node.blobs.list()).length, roots, 'no new blob is visible')
    await node.blobs.gc()
    const after = (await node.blobs.usage()).blocks
    assert.equal(after.count, before.count, 'no block of the cut upload is left')
    assert.equal(after.unreferenced, 0)
  })
})
