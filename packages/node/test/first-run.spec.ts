import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Repo } from '@automerge/automerge-repo'
import type { AutomergeUrl, PeerId } from '@automerge/automerge-repo'
import { WebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket'
import { cleanEnv, runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'
import { call } from './docs-helpers.js'

/**
 * Open it and it works: a first start creates a personal agent, so documents
 * and a stock automerge-repo client on /automerge work with no `trust init`;
 * `trust join` on a device whose first-start agent made nothing replaces that
 * agent (its certificate revoked, its key set aside), is refused once the
 * agent has a document, and `hearth init --join` starts a device with no agent.
 */
describe('the first run', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  const repos: Repo[] = []
  before(async () => { dir = await tempDir() })
  after(async () => {
    await Promise.all(repos.map(async r => await r.shutdown().catch(() => {})))
    await Promise.all(daemons.map(async d => await d.kill('SIGKILL')))
    await dir.remove()
  })
  const start = async (name: string): Promise<DaemonProc> => {
    const d = await spawnDaemon(join(dir.path, name))
    daemons.push(d)
    return d
  }

  it('acts for a new agent at once: documents and a stock automerge-repo client work without trust init', async () => {
    const home = await start('home')
    const self = await call(home, 'GET', '/trust/self')
    assert.match(self.agent_id, /^z6Mk/, 'a first start made no agent')
    assert.equal(self.has_agent_key, true)
    assert.ok(existsSync(join(home.dataDir, 'keys', 'agent.key')))
    const doc = await call(home, 'POST', '/docs', { title: 'first', items: [] })
    assert.equal(doc.owner, self.agent_id)

    const url = `${home.url.replace('http', 'ws')}/automerge?token=${encodeURIComponent(home.token)}`
    const repo = new Repo({ network: [new WebSocketClientAdapter(url, 500)], peerId: 'browser' as PeerId, sharePolicy: async () => true })
    repos.push(repo)
    await waitFor(() => repo.peers.length > 0, 10_000, 'the daemon as the client\'s peer')
    const handle = await repo.find<any>(doc.url as AutomergeUrl)
    assert.deepEqual(handle.doc(), { title: 'first', items: [] })

    // a restart keeps the same agent: the first start happens once
    const status = await runCli(['status', '--json'], cleanEnv({ HEARTH_DATA: home.dataDir }))
    assert.equal(JSON.parse(status.stdout).trust.agent_id, self.agent_id, status.stdout)
  })

  it('joins another agent in one step, giving up a first-start agent that made nothing; refuses once it made a document', async () => {
    const [home, laptop, busy] = await Promise.all(['home2', 'laptop', 'busy'].map(start))
    const homeAgent = (await call(home, 'GET', '/trust/self')).agent_id
    const own = await call(laptop, 'GET', '/trust/self')
    assert.notEqual(own.agent_id, homeAgent)

    const invitation = (await call(home, 'POST', '/trust/invites')).invitation
    const joined = await call(laptop, 'POST', '/trust/join', { invitation, name: 'laptop' })
    assert.equal(joined.agent_id, homeAgent)
    assert.equal(joined.has_agent_key, false)
    assert.equal(existsSync(join(laptop.dataDir, 'keys', 'agent.key')), false, 'the first-start agent key is still in use')
    assert.ok(readdirSync(join(laptop.dataDir, 'keys')).some(f => f.endsWith('.retired')), 'the first-start key was not kept aside')
    // its own agent's certificate is revoked, so the device acts for one agent only
    const oldAgent = await fetch(`${laptop.url}/trust/agents/${own.agent_id}`)
    assert.equal(oldAgent.status, 404, 'the first-start agent still certifies the device')
    // documents are now made for the joined agent
    assert.equal((await call(laptop, 'POST', '/docs', { n: 1 })).owner, homeAgent)

    // a device whose own agent made a document keeps it
    const mine = (await call(busy, 'GET', '/trust/self')).agent_id
    await call(busy, 'POST', '/docs', { mine: true })
    const second = (await call(home, 'POST', '/trust/invites')).invitation
    const refused = await fetch(`${busy.url}/trust/join`, { method: 'POST', headers: { authorization: `Bearer ${busy.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ invitation: second }) })
    assert.equal(refused.status, 409)
    const body = await refused.json() as { error: string, message: string }
    assert.equal(body.error, 'ERR_ALREADY_JOINED')
    assert.match(body.message, /documents/)
    const after = await call(busy, 'GET', '/trust/self')
    assert.equal(after.agent_id, mine)
    assert.equal(after.has_agent_key, true)
  })

  it('starts with no agent after hearth init --join, and joins', async () => {
    const data = join(dir.path, 'phone')
    const init = await runCli(['init', '--join', '--json'], cleanEnv({ HEARTH_DATA: data }))
    assert.equal(init.code, 0, init.stderr)
    assert.equal(JSON.parse(init.stdout).auto_agent, false)
    const phone = await spawnDaemon(data)
    daemons.push(phone)
    assert.equal((await call(phone, 'GET', '/trust/self')).agent_id, null)
    const home = daemons[0]
    const invitation = (await call(home, 'POST', '/trust/invites')).invitation
    assert.equal((await call(phone, 'POST', '/trust/join', { invitation })).agent_id, (await call(home, 'GET', '/trust/self')).agent_id)
  })
})
