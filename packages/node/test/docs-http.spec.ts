import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as A from '@automerge/automerge'
import type { FastifyInstance } from 'fastify'
import { generateKeyPair } from '@hearth/trust'
import { actorIdFromDevice, changeSigningMessage, createDeviceSigner, encodeMessage, generateDocumentId, parseDocumentId } from '@hearth/sync'
import { buildApi, HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { tempDir } from './helpers.js'

const hexBytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'))

describe('documents over HTTP', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let node: HearthNode
  let api: FastifyInstance
  let auth: Record<string, string>
  let id: string

  before(async () => {
    dir = await tempDir()
    node = new HearthNode(loadConfig({ env: { HEARTH_DATA: dir.path, ENABLE_P2P: 'false', HEARTH_AUTO_AGENT: 'false' } }), { logger: silentLogger })
    await node.start()
    api = await buildApi({ node })
    auth = { authorization: `Bearer ${node.token}` }
  })
  after(async () => {
    await api?.close()
    await node?.stop()
    await dir.remove()
  })

  const json = (body: unknown): { headers: Record<string, string>, payload: string } => ({ headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify(body) })

  it('needs the token to create, and an agent to own documents', async () => {
    assert.equal(node.docs.loaded, undefined, 'a node without documents has not loaded Automerge')
    const anon = await api.inject({ method: 'POST', url: '/docs', headers: { 'content-type': 'application/json' }, payload: '{}' })
    assert.equal(anon.statusCode, 401)
    const noAgent = await api.inject({ method: 'POST', url: '/docs', ...json({ title: 'x' }) })
    assert.equal(noAgent.statusCode, 409)
    assert.equal(noAgent.json().error, 'ERR_NO_AGENT')
    await node.trust.initAgent()
  })

  it('creates a document from JSON and serves its projection with an ETag and 304', async () => {
    const res = await api.inject({ method: 'POST', url: '/docs', ...json({ title: 'shopping', items: ['milk'] }) })
    assert.equal(res.statusCode, 201, res.body)
    const info = res.json()
    id = info.id
    assert.equal(info.url, `automerge:${id}`)
    assert.equal(info.owner, node.trust.agentId)
    assert.equal(info.schema_version, '1.0')
    assert.equal(info.header_schema_version, 1)
    assert.match(info.created_at, /^\d{4}-\d{2}-\d{2}T.*Z$/)
    assert.equal(res.headers.location, `/docs/${id}`)

    // private: the token is needed even to read
    assert.equal((await api.inject(`/cache/docs/${id}`)).statusCode, 401)
    for (const form of [id, `automerge:${id}`]) {
      const view = await api.inject({ url: `/cache/docs/${form}`, headers: auth })
      assert.equal(view.statusCode, 200)
      assert.deepEqual(view.json().value, { title: 'shopping', items: ['milk'] })
      assert.deepEqual(view.json().heads, info.heads)
      assert.equal(view.headers['x-schema-version'], '1.0')
      const again = await api.inject({ url: `/cache/docs/${form}`, headers: { ...auth, 'if-none-match': String(view.headers.etag) } })
      assert.equal(again.statusCode, 304)
    }
  })

  it('patches with JSON Merge Patch, and a new state gets a new ETag', async () => {
    const before = await api.inject({ url: `/cache/docs/${id}`, headers: auth })
    const res = await api.inject({ method: 'PATCH', url: `/docs/${id}`, headers: { ...auth, 'content-type': 'application/merge-patch+json' }, payload: JSON.stringify({ items: ['milk', 'eggs'], meta: { by: 'me', gone: null }, title: null }) })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(typeof res.json().hash, 'string')
    const view = await api.inject({ url: `/cache/docs/${id}`, headers: { ...auth, 'if-none-match': String(before.headers.etag) } })
    assert.equal(view.statusCode, 200)
    assert.notEqual(view.headers.etag, before.headers.etag)
    assert.deepEqual(view.json().value, { items: ['milk', 'eggs'], meta: { by: 'me' } })
    // a patch that is not an object changes nothing
    for (const bad of ['[1,2]', '"x"']) {
      const r = await api.inject({ method: 'PATCH', url: `/docs/${id}`, headers: { ...auth, 'content-type': 'application/json' }, payload: bad })
      assert.equal(r.statusCode, 400, bad)
    }
    let deep: any = {}
    const root = deep
    for (let i = 0; i < 100; i++) { deep.x = {}; deep = deep.x }
    const tooDeep = await api.inject({ method: 'PATCH', url: `/docs/${id}`, ...json(root), headers: { ...auth, 'content-type': 'application/json' } })
    assert.equal(tooDeep.statusCode, 400)
    assert.equal(tooDeep.json().error, 'ERR_INVALID_PATCH')
    assert.deepEqual((await api.inject({ url: `/cache/docs/${id}`, headers: auth })).json().heads, view.json().heads)
  })

  it('serves the Automerge binary, and takes raw Automerge changes that it signs for its agent', async () => {
    const bin = await api.inject({ url: `/docs/${id}`, headers: auth })
    assert.equal(bin.statusCode, 200)
    assert.equal(bin.headers['content-type'], 'application/octet-stream')
    const doc = A.load<any>(new Uint8Array(bin.rawPayload))
    assert.deepEqual(doc.items, ['milk', 'eggs'])
    const edited = A.change(A.clone(doc), (d: any) => { d.items.push('bread') })
    const change = A.getLastLocalChange(edited)!
    const res = await api.inject({ method: 'POST', url: `/docs/${id}/changes`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: Buffer.from(change) })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().accepted, 1)
    assert.deepEqual((await api.inject({ url: `/cache/docs/${id}`, headers: auth })).json().value.items, ['milk', 'eggs', 'bread'])
    // garbage is refused with a code, and changes nothing
    const junk = await api.inject({ method: 'POST', url: `/docs/${id}/changes`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: Buffer.from('not automerge') })
    assert.equal(junk.statusCode, 400)
    assert.equal(junk.json().error, 'ERR_MALFORMED_MESSAGE')
  })

  it('refuses signed changes by a device outside the ACL, and forged ones, applying nothing', async () => {
    const heads = (await api.inject({ url: `/cache/docs/${id}`, headers: auth })).json().heads
    const doc = A.load<any>(new Uint8Array((await api.inject({ url: `/docs/${id}`, headers: auth })).rawPayload))
    const stranger = createDeviceSigner(generateKeyPair())
    const edited = A.change(A.clone(doc, { actor: actorIdFromDevice(stranger.deviceId) }), (d: any) => { d.items = [] })
    const change = A.getLastLocalChange(edited)!
    const hash = A.decodeChange(change).hash
    const docBytes = parseDocumentId(id).bytes
    const signature = stranger.sign(changeSigningMessage('device', docBytes, hexBytes(hash)))
    const post = async (sig: Uint8Array): Promise<{ statusCode: number, json: () => any }> => await api.inject({
      method: 'POST',
      url: `/docs/${id}/changes`,
      headers: { ...auth, 'content-type': 'application/vnd.hearth.changes' },
      payload: Buffer.from(encodeMessage({ type: 'changes', doc: parseDocumentId(id).id, changes: [change], signatures: [{ hash, kind: 'device', device: stranger.deviceId, signature: sig }] }))
    })
    const outsider = await post(signature)
    assert.equal(outsider.statusCode, 403)
    assert.equal(outsider.json().error, 'ERR_UNAUTHORIZED_WRITER')
    const forged = Uint8Array.from(signature)
    forged[0] ^= 1
    const bad = await post(forged)
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().error, 'ERR_INVALID_SIGNATURE')
    assert.deepEqual((await api.inject({ url: `/cache/docs/${id}`, headers: auth })).json().heads, heads)
  })

  it('answers bad ids, unknown documents and oversized bodies with codes', async () => {
    const badId = await api.inject({ url: '/cache/docs/not-an-id!', headers: auth })
    assert.equal(badId.statusCode, 400)
    assert.equal(badId.json().error, 'ERR_INVALID_DOCUMENT_ID')
    const unknown = await api.inject({ url: `/cache/docs/${generateDocumentId().id}`, headers: auth })
    assert.equal(unknown.statusCode, 404)
    assert.equal(unknown.json().error, 'ERR_DOC_NOT_FOUND')
    const huge = await api.inject({ method: 'POST', url: `/docs/${id}/changes`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(9 * 1024 * 1024) })
    assert.equal(huge.statusCode, 413)
    const notJson = await api.inject({ method: 'POST', url: '/docs', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"a":' })
    assert.equal(notJson.statusCode, 400)
    const notObject = await api.inject({ method: 'POST', url: '/docs', ...json([1, 2]) })
    assert.equal(notObject.statusCode, 400)
  })

  it('lists documents with the token, changes the ACL, and serves public documents to anyone', async () => {
    assert.equal((await api.inject('/docs')).statusCode, 401)
    const pub = (await api.inject({ method: 'POST', url: '/docs?public=true', ...json({ notice: 'open day' }) })).json()
    const list = await api.inject({ url: '/docs?limit=10', headers: auth })
    assert.equal(list.statusCode, 200)
    assert.deepEqual(list.json().documents.map((d: any) => d.id).sort(), [id, pub.id].sort())
    const anon = await api.inject(`/cache/docs/${pub.id}`)
    assert.equal(anon.statusCode, 200)
    assert.equal(anon.headers['cache-control'], 'no-cache')
    const reader = 'z6Mk' + 'f'.repeat(10)
    const badAcl = await api.inject({ method: 'PUT', url: `/docs/${id}/acl`, ...json({ readers: [reader] }), headers: { ...auth, 'content-type': 'application/json' } })
    assert.equal(badAcl.statusCode, 400, 'an ACL naming something that is not an agent id is refused')
    const acl = await api.inject({ method: 'PUT', url: `/docs/${id}/acl`, ...json({ public: true }), headers: { ...auth, 'content-type': 'application/json' } })
    assert.equal(acl.statusCode, 200, acl.body)
    assert.equal(acl.json().acl.public, true)
    assert.equal(acl.json().header_version, 2)
    assert.equal((await api.inject(`/cache/docs/${id}`)).statusCode, 200)
  })

  it('answers /db/schema and shows documents in /p2p/status', async () => {
    const schema = await api.inject('/db/schema')
    assert.equal(schema.statusCode, 200)
    assert.deepEqual(schema.json().documents, [1])
    assert.deepEqual(schema.json().automerge_repo, ['1'])
    const status = (await api.inject('/p2p/status')).json()
    assert.equal(status.sync.loaded, true)
    assert.equal(status.sync.documents, 2)
    const metrics = (await api.inject('/metrics')).body
    assert.match(metrics, /^hearth_documents 2$/m)
    assert.match(metrics, /^hearth_sync_sessions\{kind="peer"\} 0$/m)
    const spec = (await api.inject('/openapi.json')).json()
    for (const path of ['/docs', '/docs/{id}', '/docs/{id}/changes', '/cache/docs/{id}', '/stream/docs/{id}', '/db/schema']) assert.ok(spec.paths[path], path)
  })
  it('streams new heads as server-sent events, with the JSON when asked', async () => {
    const server = await buildApi({ node })
    await server.listen({ host: '127.0.0.1', port: 0 })
    try {
      const base = `http://127.0.0.1:${(server.server.address() as { port: number }).port}`
      const controller = new AbortController()
      const res = await fetch(`${base}/stream/docs/${id}?value=true`, { headers: auth, signal: controller.signal })
      assert.equal(res.status, 200)
      assert.match(String(res.headers.get('content-type')), /^text\/event-stream/)
      const events: any[] = []
      const reading = (async () => {
        let buf = ''
        for await (const chunk of res.body as any) {
          buf += Buffer.from(chunk).toString()
          let end
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const data = buf.slice(0, end).split('\n').find(l => l.startsWith('data: '))
            buf = buf.slice(end + 2)
            if (data != null) events.push(JSON.parse(data.slice(6)))
          }
        }
      })().catch(() => {})
      const until = async (n: number): Promise<void> => { for (let i = 0; i < 200 && events.length < n; i++) await new Promise(resolve => setTimeout(resolve, 10)) }
      await until(1)
      assert.equal(events[0].origin, 'initial')
      await api.inject({ method: 'PATCH', url: `/docs/${id}`, ...json({ streamed: true }) })
      await until(2)
      assert.equal(events[1].origin, 'local')
      assert.equal(events[1].value.streamed, true)
      assert.deepEqual(events[1].heads, (await api.inject({ url: `/cache/docs/${id}`, headers: auth })).json().heads)
      controller.abort()
      await reading
      // every document, with the token only
      assert.equal((await fetch(`${base}/stream/docs`)).status, 401)
      // an open stream does not hold the server's close: it ends the stream
      const open = await fetch(`${base}/stream/docs`, { headers: auth })
      assert.equal(open.status, 200)
      const closing = server.close()
      const outcome = await Promise.race([closing.then(() => 'closed'), new Promise(resolve => setTimeout(() => resolve('hung'), 8000))])
      assert.equal(outcome, 'closed')
    } finally {
      await server.close()
    }
  })
})
