import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApi, HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { tempDir } from './helpers.js'

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
/** unix milliseconds from 2017 to 2096: a time that should have been ISO 8601 */
const looksLikeEpochMs = (n: number): boolean => n > 1.5e12 && n < 4e12
const SIZE_KEY = /bytes|size|quota|free|used|total|rate/

/** Every place in `value` that breaks the one shape: epoch times, `_at` fields not ISO, a nested schema_version of another form */
function offences (value: unknown, path: string, out: string[]): string[] {
  if (Array.isArray(value)) value.forEach((v, i) => offences(v, `${path}[${i}]`, out))
  else if (value != null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const at = `${path}.${k}`
      if ((k.endsWith('_at') || k === 'since' || k === 'last_seen') && v != null && !(typeof v === 'string' && ISO.test(v))) out.push(`${at} = ${JSON.stringify(v)} is not an ISO 8601 UTC time`)
      else if (typeof v === 'number' && looksLikeEpochMs(v) && !SIZE_KEY.test(k)) out.push(`${at} = ${v} looks like unix milliseconds`)
      else if (k === 'schema_version' && v !== '1.0') out.push(`${at} = ${JSON.stringify(v)}`)
      else offences(v, at, out)
    }
  }
  return out
}

/**
 * One shape for every JSON view: schema_version "1.0" on each (as in the
 * X-Schema-Version header), times as ISO 8601 UTC strings; and the
 * schema-version contract on requests.
 */
describe('one shape for every view', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let node: HearthNode
  let api: FastifyInstance
  let auth: Record<string, string>
  const ids: Record<string, string> = {}

  before(async () => {
    dir = await tempDir()
    node = new HearthNode(loadConfig({ env: { HEARTH_DATA: dir.path, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true' } }), { logger: silentLogger })
    await node.start()
    api = await buildApi({ node })
    auth = { authorization: `Bearer ${node.token}` }
    const blob = await api.inject({ method: 'POST', url: '/blob?layer=sovereign', headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: randomBytes(5000) })
    assert.equal(blob.statusCode, 201, blob.body)
    ids.cid = blob.json().cid
    const doc = await api.inject({ method: 'POST', url: '/docs', headers: auth, payload: { title: 'shape' } })
    assert.equal(doc.statusCode, 201, doc.body)
    ids.doc = doc.json().id
    ids.agent = node.trust.agentId!
    assert.equal((await api.inject({ method: 'POST', url: '/trust/invites', headers: auth, payload: {} })).statusCode, 201)
    assert.equal((await api.inject({ method: 'POST', url: '/tokens', headers: auth, payload: { name: 'shape', scope: 'read' } })).statusCode, 201)
  })
  after(async () => {
    await api?.close()
    await node?.stop()
    await dir?.remove()
  })

  it('every JSON view carries schema_version "1.0" and ISO 8601 UTC times', async () => {
    const spec = (await api.inject('/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> }
    const fill: Record<string, string> = { cid: ids.cid, id: ids.doc, agent: ids.agent }
    const checked: string[] = []
    const problems: string[] = []
    for (const [pattern, methods] of Object.entries(spec.paths)) {
      if (methods.get == null || pattern.startsWith('/stream') || pattern === '/automerge' || pattern.startsWith('/api-docs')) continue
      const url = pattern.replace(/\{(\w+)\}/g, (_, name: string) => pattern.startsWith('/trust/agents/') ? ids.agent : fill[name] ?? name)
      if (/\{|\/(ipfs|cache)\//.test(url) && !url.includes(ids.cid) && !url.includes(ids.doc)) continue
      const res = await api.inject({ url, headers: auth })
      if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('application/json')) continue
      assert.equal(res.headers['x-schema-version'], '1.0', url)
      const body = res.json()
      checked.push(url)
      if (body != null && typeof body === 'object' && !Array.isArray(body) && url !== '/openapi.json') {
        if (body.schema_version !== '1.0') problems.push(`${url}: schema_version ${JSON.stringify(body.schema_version)}`)
      }
      if (url !== '/openapi.json' && !url.startsWith('/cache/docs/')) offences(body, url, problems)
    }
    assert.ok(checked.length >= 18, `only ${checked.length} views were checked: ${checked.join(' ')}`)
    assert.deepEqual(problems, [])
  })

  it('describes /automerge in the OpenAPI document', async () => {
    const spec = (await api.inject('/openapi.json')).json() as { paths: Record<string, any> }
    assert.ok(spec.paths['/automerge']?.get != null, 'no /automerge in the OpenAPI document')
    assert.match(JSON.stringify(spec.paths['/automerge'].get), /WebSocket/)
  })

  it('refuses a request for a schema version it cannot serve, naming the ones it can', async () => {
    for (const asked of ['2.0', '1.1', '0.9', 'one']) {
      const res = await api.inject({ url: '/p2p/status', headers: { ...auth, 'x-schema-version': asked } })
      assert.equal(res.statusCode, 400, asked)
      assert.equal(res.json().error, 'ERR_UNSUPPORTED_SCHEMA_VERSION', asked)
      assert.equal(res.headers['x-supported-schema-versions'], '1.0', asked)
    }
    // a write asked at a version not served changes nothing
    const before = (await api.inject({ url: '/pins', headers: auth })).json().pins.length
    const refused = await api.inject({ method: 'POST', url: '/blob', headers: { ...auth, 'content-type': 'application/octet-stream', 'x-schema-version': '2.0' }, payload: randomBytes(100) })
    assert.equal(refused.statusCode, 400)
    assert.equal((await api.inject({ url: '/pins', headers: auth })).json().pins.length, before)
    for (const asked of ['1.0', '1']) assert.equal((await api.inject({ url: '/p2p/status', headers: { ...auth, 'x-schema-version': asked } })).statusCode, 200, asked)
    const schema = (await api.inject({ url: '/db/schema', headers: auth })).json()
    assert.deepEqual(schema.api, ['1.0'])
  })
})
