import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import { runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

interface Res { status: number, headers: Record<string, string | string[] | undefined>, body: any, text: string }

/** One HTTP request over a fresh socket, from `from` (a loopback source address) if given */
async function call (d: DaemonProc, method: string, path: string, opts: { token?: string, body?: unknown, raw?: Buffer, headers?: Record<string, string>, from?: string } = {}): Promise<Res> {
  const url = new URL(d.url + path)
  const payload = opts.raw ?? (opts.body !== undefined ? Buffer.from(JSON.stringify(opts.body)) : undefined)
  return await new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method,
      agent: false,
      ...(opts.from != null ? { localAddress: opts.from } : {}),
      headers: {
        ...(opts.token != null ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(payload != null ? { 'content-length': String(payload.length) } : {}),
        ...opts.headers
      }
    }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        let body: any
        try { body = JSON.parse(text) } catch { body = undefined }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** A request written by hand, for what a client library would not send */
async function rawHttp (d: DaemonProc, text: string | Buffer): Promise<string> {
  const url = new URL(d.url)
  return await new Promise(resolve => {
    const s = connect(Number(url.port), url.hostname)
    let out = ''
    s.on('data', c => { out += String(c) })
    s.on('close', () => { resolve(out) })
    s.on('error', () => { resolve(out) })
    s.write(text)
    setTimeout(() => { s.destroy() }, 5000).unref()
  })
}

describe('access to the HTTP API', () => {
  let dir: { path: string, remove: () => Promise<void> }
  let open: DaemonProc
  let closed: DaemonProc
  before(async () => {
    dir = await tempDir()
    ;[open, closed] = await Promise.all([
      spawnDaemon(join(dir.path, 'open'), { ENABLE_P2P: 'false', HEARTH_CORS_ORIGINS: 'https://app.example', HEARTH_HTTP_WRITE_RATE: '40' }),
      spawnDaemon(join(dir.path, 'closed'), { ENABLE_P2P: 'false', HEARTH_OPEN_READS: 'false' })
    ])
  })
  after(async () => {
    await Promise.all([open?.kill('SIGKILL'), closed?.kill('SIGKILL')])
    await dir?.remove()
  })

  it('scoped tokens: read reads, write writes, admin administers; a revoked token stops at once; node.db keeps no secret', async () => {
    const admin = closed.token
    const mk = async (scope: string): Promise<{ token: string, id: string }> => {
      const r = await call(closed, 'POST', '/tokens', { token: admin, body: { name: `${scope} app`, scope } })
      assert.equal(r.status, 201, r.text)
      assert.match(r.body.token, /^hearth_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
      return r.body
    }
    const read = await mk('read')
    const write = await mk('write')
    const blob = randomBytes(1000)

    assert.equal((await call(closed, 'GET', '/pins', { token: read.token })).status, 200)
    const refused = await call(closed, 'POST', '/blob', { token: read.token, raw: blob, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(refused.status, 403)
    assert.equal(refused.body.error, 'ERR_FORBIDDEN')
    const added = await call(closed, 'POST', '/blob', { token: write.token, raw: blob, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(added.status, 201, added.text)
    for (const [method, path, body] of [['POST', '/trust/init', {}], ['POST', '/tokens', { name: 'x', scope: 'read' }], ['GET', '/tokens', undefined], ['POST', '/storage/gc', {}]] as const) {
      const r = await call(closed, method, path, { token: write.token, body })
      assert.equal(r.status, 403, `${method} ${path} with a write token: ${r.text}`)
    }
    assert.equal((await call(closed, 'POST', '/storage/gc', { token: admin, body: {} })).status, 200)

    const listed = await call(closed, 'GET', '/tokens', { token: admin })
    assert.deepEqual(listed.body.tokens.map((t: any) => t.scope).sort(), ['read', 'write'])
    assert.ok(listed.body.tokens.every((t: any) => t.token === undefined), 'no secret is listed')
    assert.ok(listed.body.tokens.some((t: any) => t.last_used_at != null))
    const db = readFileSync(join(dir.path, 'closed', 'node.db'))
    for (const t of [read, write]) assert.equal(db.includes(Buffer.from(t.token.split('_')[2])), false, 'the secret is not in node.db')

    assert.equal((await call(closed, 'DELETE', `/tokens/${read.id}`, { token: admin })).status, 204)
    assert.equal((await call(closed, 'GET', '/pins', { token: read.token })).status, 401, 'revoked')
    assert.equal((await call(closed, 'DELETE', `/tokens/${read.id}`, { token: admin })).body.error, 'ERR_TOKEN_NOT_FOUND')
    // a forged token with a real id: the secret is what counts
    assert.equal((await call(closed, 'GET', '/pins', { token: `hearth_${write.id}_${'A'.repeat(43)}` })).status, 401)
  })

  it('hearth token makes, lists and revokes tokens', async () => {
    const made = await runCli(['token', 'create', '--name', 'photo-app', '--scope', 'write'], closed.env)
    assert.equal(made.code, 0, made.stderr)
    const token = made.stdout.trim()
    assert.match(token, /^hearth_/)
    assert.match(made.stderr, /shown only now/)
    assert.equal((await call(closed, 'POST', '/blob', { token, raw: Buffer.from('from the app'), headers: { 'content-type': 'application/octet-stream' } })).status, 201)
    const ls = await runCli(['token', 'ls'], closed.env)
    assert.equal(ls.code, 0)
    assert.match(ls.stdout, /write\s+photo-app/)
    assert.equal(ls.stdout.includes(token), false)
    const id = token.split('_')[1]
    assert.equal((await runCli(['token', 'revoke', id], closed.env)).code, 0)
    assert.equal((await call(closed, 'GET', '/pins', { token })).status, 401)
    const bad = await runCli(['token', 'create', '--name', 'x', '--scope', 'root'], closed.env)
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /--scope read\|write\|admin/)
  })

  it('closed reads need a token, except /health and /ready; open reads (the loopback default) do not', async () => {
    for (const path of ['/pins', '/storage', '/p2p/status', '/trust/graph', '/metrics', '/replication/status']) {
      const r = await call(closed, 'GET', path)
      assert.equal(r.status, 401, `${path}: ${r.text}`)
      assert.equal(r.body.error, 'ERR_UNAUTHORIZED')
    }
    assert.equal((await call(closed, 'GET', '/health')).status, 200)
    assert.equal((await call(closed, 'GET', '/ready')).status, 200)
    assert.equal((await call(open, 'GET', '/pins')).status, 200)
    assert.equal((await call(open, 'POST', '/blob', { raw: Buffer.from('x') })).status, 401, 'writes always need a token')
  })

  it('CORS answers only the named origin', async () => {
    const pre = (origin: string): Promise<Res> => call(open, 'OPTIONS', '/pins', { headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } })
    const ok = await pre('https://app.example')
    assert.ok(ok.status === 204 || ok.status === 200, ok.text)
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example')
    assert.match(String(ok.headers['access-control-allow-headers']), /authorization/i)
    const other = await pre('https://evil.example')
    assert.equal(other.headers['access-control-allow-origin'], undefined)
    const get = await call(open, 'GET', '/pins', { headers: { origin: 'https://evil.example' } })
    assert.equal(get.headers['access-control-allow-origin'], undefined)
    assert.equal((await call(closed, 'OPTIONS', '/pins', { headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' } })).headers['access-control-allow-origin'], undefined, 'no origins configured: no CORS at all')
  })

  it('limits failed authentications per address and writes per client', async () => {
    const from = '127.0.0.9'
    let limited: Res | undefined
    for (let i = 0; i < 40 && limited == null; i++) {
      const r = await call(open, 'POST', '/pins', { token: `wrong-token-${i}`, body: { cid: 'x', layer: 'gift' }, from })
      if (r.status === 429) limited = r
      else assert.equal(r.status, 401)
    }
    assert.ok(limited != null, 'refused after 30 failures')
    assert.equal(limited.body.error, 'ERR_RATE_LIMITED')
    assert.ok(Number(limited.headers['retry-after']) >= 1)
    // the right token from the same address still works, and other addresses are not affected
    assert.equal((await call(open, 'GET', '/tokens', { token: open.token, from })).status, 200)
    assert.equal((await call(open, 'POST', '/pins', { token: 'wrong-token', body: { cid: 'x', layer: 'gift' }, from: '127.0.0.10' })).status, 401)

    // HEARTH_HTTP_WRITE_RATE=40 for this daemon: the writes past it are refused, reads go on
    const { body: t } = await call(open, 'POST', '/tokens', { token: open.token, body: { name: 'busy', scope: 'write' } })
    const statuses: number[] = []
    for (let i = 0; i < 45; i++) statuses.push((await call(open, 'DELETE', `/pins/${'bafkqaaa'}`, { token: t.token })).status)
    assert.ok(statuses.slice(0, 39).every(s => s !== 429), statuses.join(','))
    assert.equal(statuses.at(-1), 429)
    assert.equal((await call(open, 'GET', '/pins', { token: t.token })).status, 200)
  })

  it('keeps change-stream slots for clients with a token, and caps each client', async () => {
    await call(open, 'POST', '/trust/init', { token: open.token, body: {} })
    const created = await call(open, 'POST', '/docs?public=true', { token: open.token, body: { hello: 'world' } })
    assert.equal(created.status, 201, created.text)
    const id = created.body.id
    const url = new URL(open.url)
    const held: Array<() => void> = []
    const stream = async (from: string, token?: string): Promise<number> => await new Promise(resolve => {
      const req = request({ host: url.hostname, port: url.port, path: `/stream/docs/${id}`, agent: false, localAddress: from, headers: token != null ? { authorization: `Bearer ${token}` } : {} }, res => {
        if (res.statusCode === 200) held.push(() => { req.destroy() })
        else res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', () => { resolve(0) })
      req.end()
    })
    try {
      const first = await Promise.all(Array.from({ length: 33 }, async () => await stream('127.0.0.21')))
      assert.equal(first.filter(s => s === 200).length, 32, 'one client holds at most 32')
      assert.equal(first.filter(s => s === 429).length, 1)
      const more = await Promise.all(Array.from({ length: 34 }, async (_, i) => await stream(i < 17 ? '127.0.0.22' : '127.0.0.23')))
      assert.equal(more.filter(s => s === 200).length, 32, 'without a token, 64 streams in all')
      assert.equal(await stream('127.0.0.24'), 429)
      assert.equal(await stream('127.0.0.24', open.token), 200, 'a client with a token still gets one')
    } finally {
      for (const close of held) close()
    }
  })

  it('answers Fastify\'s and Node\'s own refusals as { error, message }, without echoing the request', async () => {
    const long = await call(open, 'GET', `/blob/${'x'.repeat(5000)}`)
    assert.equal(long.status, 414)
    assert.deepEqual(Object.keys(long.body).sort(), ['error', 'message'])
    assert.equal(long.body.error, 'ERR_URL_TOO_LONG')
    assert.equal(long.text.includes('xxxxxxxxxx'), false)
    const bad = await call(open, 'GET', '/blob/%zz')
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error, 'ERR_BAD_URL')
    assert.equal(bad.text.includes('%zz'), false)
    const big = await rawHttp(open, `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    assert.match(big, /^HTTP\/1\.1 431 /)
    assert.deepEqual(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).error, 'ERR_HEADERS_TOO_LARGE')
    const junk = await rawHttp(open, 'GET /health HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n')
    assert.match(junk, /^HTTP\/1\.1 400 /)
    assert.equal(JSON.parse(junk.slice(junk.indexOf('\r\n\r\n') + 4)).error, 'ERR_BAD_REQUEST')
  })

  it('cuts a request body that dribbles, and keeps nothing of it', { timeout: 60_000 }, async () => {
    const before = (await call(open, 'GET', '/pins')).body.pins.length
    const url = new URL(open.url)
    const t0 = Date.now()
    const answer = await new Promise<string>(resolve => {
      const s = connect(Number(url.port), url.hostname)
      let out = ''
      s.on('data', c => { out += String(c) })
      s.on('close', () => { clearInterval(drip); resolve(out) })
      s.on('error', () => {})
      s.write(`POST /blob?layer=gift HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${open.token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n`)
      const drip = setInterval(() => { if (!s.destroyed) s.write('x') }, 1000)
    })
    const took = Date.now() - t0
    assert.ok(took < 35_000, `cut after ${took} ms`)
    assert.match(answer, /^HTTP\/1\.1 408 [\s\S]*ERR_REQUEST_TIMEOUT/)
    assert.equal((await call(open, 'GET', '/pins')).body.pins.length, before, 'nothing was pinned')
  })

  it('refuses a pin for an agent this node keeps nothing for, instead of acknowledging a pin that would vanish', async () => {
    const p2p = await spawnDaemon(join(dir.path, 'p2p'))
    try {
      await call(p2p, 'POST', '/trust/init', { token: p2p.token, body: {} })
      const stranger = keyIdFromPublicKey(generateKeyPair().publicKey)
      const before = (await call(p2p, 'GET', '/pins')).body.pins
      const add = await call(p2p, 'POST', `/blob?layer=sovereign&owner=${stranger}`, { token: p2p.token, raw: randomBytes(2000), headers: { 'content-type': 'application/octet-stream' } })
      assert.equal(add.status, 409, add.text)
      assert.equal(add.body.error, 'ERR_OWNER_NOT_HELD')
      const own = await call(p2p, 'POST', '/blob?layer=sovereign', { token: p2p.token, raw: randomBytes(2000), headers: { 'content-type': 'application/octet-stream' } })
      assert.equal(own.status, 201)
      const pin = await call(p2p, 'POST', '/pins', { token: p2p.token, body: { cid: own.body.cid, layer: 'gift', owner: stranger } })
      assert.equal(pin.status, 409)
      const after = (await call(p2p, 'GET', '/pins')).body.pins
      assert.equal(after.length, before.length + 1, 'only the own pin was stored')
      assert.equal(after.some((p: any) => p.owner === stranger), false)
    } finally {
      await p2p.kill('SIGKILL')
    }
  })

  it('warns at start when it serves open reads beyond loopback', async () => {
    const wide = await spawnDaemon(join(dir.path, 'wide'), { ENABLE_P2P: 'false', HEARTH_HTTP_HOST: '0.0.0.0', HEARTH_OPEN_READS: 'true' })
    try {
      await waitFor(() => wide.output().includes('reads are open to anyone'), 5000, 'the warning')
    } finally {
      await wide.kill('SIGKILL')
    }
    const shut = await spawnDaemon(join(dir.path, 'shut'), { ENABLE_P2P: 'false', HEARTH_HTTP_HOST: '0.0.0.0' })
    try {
      assert.equal(shut.output().includes('reads are open to anyone'), false)
      assert.equal((await call(shut, 'GET', '/pins')).status, 401, 'beyond loopback, reads are closed by default')
    } finally {
      await shut.kill('SIGKILL')
    }
  })
})
