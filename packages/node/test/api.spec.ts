import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApi, HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { tempDir, waitFor } from './helpers.js'

async function startNode (data: string, env: Record<string, string>): Promise<HearthNode> {
  const node = new HearthNode(loadConfig({ env: { HEARTH_DATA: data, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', ...env } }), { logger: silentLogger })
  await node.start()
  return node
}

describe('HTTP API', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let a: HearthNode
  let b: HearthNode
  let local: HearthNode
  let api: FastifyInstance
  let localApi: FastifyInstance
  let auth: Record<string, string>

  before(async () => {
    dir = await tempDir()
    a = await startNode(`${dir.path}/a`, {})
    b = await startNode(`${dir.path}/b`, {})
    local = await startNode(`${dir.path}/local`, { ENABLE_P2P: 'false', HEARTH_API_TOKEN: 'a-long-enough-test-token' })
    api = await buildApi({ node: a })
    localApi = await buildApi({ node: local })
    auth = { authorization: `Bearer ${a.token}` }
  })
  after(async () => {
    await api?.close()
    await localApi?.close()
    await Promise.all([a?.stop(), b?.stop(), local?.stop()])
    await dir.remove()
  })

  it('answers /health and /ready', async () => {
    const health = await api.inject('/health')
    assert.equal(health.statusCode, 200)
    assert.equal(health.json().status, 'ok')
    assert.equal(health.headers['x-schema-version'], '1.0')
    assert.equal(health.headers['x-content-type-options'], 'nosniff')
    const ready = await api.inject('/ready')
    assert.equal(ready.statusCode, 200)
    assert.deepEqual(ready.json(), { schema_version: '1.0', ready: true, checks: { store: true, blobs: true, p2p: true, disk: 'ok' } })
    const localReady = await localApi.inject('/ready')
    assert.deepEqual(localReady.json(), { schema_version: '1.0', ready: true, checks: { store: true, blobs: true, p2p: 'disabled', disk: 'ok' } })
  })

  it('reports 503 on /ready once the node stops', async () => {
    const data = `${dir.path}/stopping`
    const node = await startNode(data, { ENABLE_P2P: 'false' })
    const app = await buildApi({ node })
    await node.stop()
    const res = await app.inject('/ready')
    assert.equal(res.statusCode, 503)
    assert.equal(res.json().ready, false)
    await app.close()
  })

  it('describes the node in /p2p/status', async () => {
    const res = await api.inject('/p2p/status')
    assert.equal(res.statusCode, 200)
    const s = res.json()
    assert.equal(s.peer_id, a.peerId.toString())
    assert.ok(s.addresses.some((x: string) => x.startsWith('/ip4/127.0.0.1/tcp/') && x.endsWith(`/p2p/${s.peer_id}`)))
    assert.ok(s.addresses.some((x: string) => x.includes('/ws/')))
    assert.deepEqual(s.bootstrap.configured, [])
    const off = (await localApi.inject('/p2p/status')).json()
    assert.equal(off.enabled, false)
    assert.deepEqual(off.addresses, [])
    assert.equal(off.peer_id, local.peerId.toString())
  })

  it('refuses writes without the bearer token', async () => {
    const none = await api.inject({ method: 'POST', url: '/p2p/connect', payload: { addr: '/ip4/127.0.0.1/tcp/1' } })
    assert.equal(none.statusCode, 401)
    assert.equal(none.json().error, 'ERR_UNAUTHORIZED')
    assert.match(String(none.headers['www-authenticate']), /Bearer/)
    const wrong = await api.inject({ method: 'POST', url: '/p2p/connect', headers: { authorization: 'Bearer nope' }, payload: { addr: '/ip4/127.0.0.1/tcp/1' } })
    assert.equal(wrong.statusCode, 401)
    assert.equal(wrong.json().error, 'ERR_UNAUTHORIZED')
    const del = await api.inject({ method: 'DELETE', url: `/p2p/peers/${b.peerId.toString()}` })
    assert.equal(del.statusCode, 401)
  })

  it('connects to and disconnects from a real peer', async () => {
    const addr = b.p2pStatus().addresses.find(x => x.startsWith('/ip4/127.0.0.1/tcp/') && !x.includes('/ws'))!
    const res = await api.inject({ method: 'POST', url: '/p2p/connect', headers: auth, payload: { addr } })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().peer_id, b.peerId.toString())
    const peers = await waitFor(async () => {
      const list = (await api.inject('/p2p/peers')).json().peers
      return list.find((p: any) => p.peer_id === b.peerId.toString() && p.latency_ms != null) != null ? list : undefined
    }, 10_000, 'latency of the connected peer')
    const peer = peers.find((p: any) => p.peer_id === b.peerId.toString())
    assert.equal(peer.direction, 'outbound')
    assert.ok(peer.latency_ms >= 0)

    const metrics = await api.inject('/metrics')
    assert.match(metrics.body, /^hearth_p2p_peers 1$/m)

    const del = await api.inject({ method: 'DELETE', url: `/p2p/peers/${b.peerId.toString()}`, headers: auth })
    assert.equal(del.statusCode, 204)
    const again = await api.inject({ method: 'DELETE', url: `/p2p/peers/${b.peerId.toString()}`, headers: auth })
    assert.equal(again.statusCode, 404)
    assert.equal(again.json().error, 'ERR_PEER_NOT_CONNECTED')
  })

  it('answers bad input with 4xx and a stable code', async () => {
    const cases: Array<[any, number, string]> = [
      [{ method: 'GET', url: '/no/such/route' }, 404, 'ERR_NOT_FOUND'],
      [{ method: 'POST', url: '/p2p/connect', headers: auth, payload: { addr: { x: 1 } } }, 400, 'ERR_VALIDATION'],
      [{ method: 'POST', url: '/p2p/connect', headers: auth, payload: {} }, 400, 'ERR_VALIDATION'],
      [{ method: 'POST', url: '/p2p/connect', headers: auth, payload: { addr: '/ip4/1.2.3.4/tcp/1', extra: true } }, 400, 'ERR_VALIDATION'],
      [{ method: 'POST', url: '/p2p/connect', headers: auth, payload: { addr: 'not a multiaddr' } }, 400, 'ERR_INVALID_MULTIADDR'],
      [{ method: 'POST', url: '/p2p/connect', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"addr":' }, 400, 'ERR_INVALID_JSON'],
      [{ method: 'POST', url: '/p2p/connect', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'hello' }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      [{ method: 'POST', url: '/p2p/connect', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ addr: 'x'.repeat(2 * 1024 * 1024) }) }, 413, 'ERR_BODY_TOO_LARGE'],
      [{ method: 'DELETE', url: '/p2p/peers/not-a-peer-id', headers: auth }, 400, 'ERR_INVALID_PEER_ID'],
      [{ method: 'GET', url: '/health', headers: { host: 'evil.example:7878' } }, 403, 'ERR_FORBIDDEN_HOST'],
      [{ method: 'GET', url: '/health', headers: { host: '127.0.0.1.evil.example' } }, 403, 'ERR_FORBIDDEN_HOST']
    ]
    for (const [req, status, code] of cases) {
      const res = await api.inject(req)
      assert.equal(res.statusCode, status, `${req.method} ${req.url}: ${res.body.slice(0, 200)}`)
      assert.equal(res.json().error, code, `${req.method} ${req.url}`)
      assert.equal(typeof res.json().message, 'string')
    }
    const dial = await api.inject({ method: 'POST', url: '/p2p/connect', headers: auth, payload: { addr: '/ip4/127.0.0.1/tcp/1' } })
    assert.equal(dial.statusCode, 502)
    assert.equal(dial.json().error, 'ERR_DIAL_FAILED')
    const disabled = await localApi.inject({ method: 'POST', url: '/p2p/connect', headers: { authorization: 'Bearer a-long-enough-test-token' }, payload: { addr: '/ip4/127.0.0.1/tcp/1' } })
    assert.equal(disabled.statusCode, 409)
    assert.equal(disabled.json().error, 'ERR_P2P_DISABLED')
  })

  it('accepts the loopback names in Host', async () => {
    for (const host of ['localhost:7878', '127.0.0.1:7878', '[::1]:7878', 'localhost']) {
      const res = await api.inject({ url: '/health', headers: { host } })
      assert.equal(res.statusCode, 200, host)
    }
  })

  it('serves OpenAPI and a docs page', async () => {
    const spec = (await api.inject('/openapi.json')).json()
    assert.equal(spec.openapi, '3.1.0')
    for (const path of ['/health', '/ready', '/metrics', '/p2p/status', '/p2p/connect']) assert.ok(spec.paths[path], path)
    const docs = await api.inject('/api-docs/')
    assert.equal(docs.statusCode, 200)
    assert.match(docs.body, /swagger/i)
  })

  it('exports Prometheus metrics', async () => {
    const res = await api.inject('/metrics')
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /text\/plain/)
    for (const name of ['process_resident_memory_bytes', 'hearth_http_requests_total', 'hearth_p2p_peers', 'hearth_ready 1', 'hearth_bootstrap_peers', 'hearth_trust_statements_total{result="received"}', 'hearth_blocks_exchanged_total{kind="sent"}', 'hearth_peer_bans_total 0', 'hearth_page_cache_dropped_bytes_total 0']) {
      assert.ok(res.body.includes(name), name)
    }
    // counters and only counters end in _total
    for (const [, name, type] of res.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      assert.equal(name.endsWith('_total'), type === 'counter', `${name} is a ${type}`)
    }
  })

  it('passes promtool check metrics', { skip: promtoolMissing() }, async () => {
    await api.inject('/health')
    const res = await api.inject('/metrics')
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += String(d) })
    child.stderr.on('data', d => { out += String(d) })
    child.stdin.end(res.body)
    const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
    assert.equal(code, 0, out)
    assert.equal(out.trim(), '', out)
  })
})

/** Why the promtool test cannot run here, or false (the setup script installs Debian's prometheus package) */
function promtoolMissing (): string | false {
  const found = spawnSync('promtool', ['--version'], { stdio: 'ignore' })
  return found.error == null ? false : 'promtool is not installed (scripts/setup-test-system.sh installs it as root with apt-get)'
}
