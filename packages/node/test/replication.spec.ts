import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cleanEnv, runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

const MiB = 1024 * 1024

describe('replication follows grants', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  before(async () => { dir = await tempDir() })
  after(async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))); await dir.remove() })

  const post = async (d: DaemonProc, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })
    const json = await res.json()
    assert.ok(res.status < 300, `${path}: ${JSON.stringify(json)}`)
    return json
  }
  const addBlob = async (d: DaemonProc, bytes: Buffer, layer: string): Promise<string> =>
    (await (await fetch(`${d.url}/blob?layer=${layer}`, { method: 'POST', headers: { authorization: `Bearer ${d.token}` }, body: bytes })).json() as any).cid
  const holds = async (d: DaemonProc, cid: string): Promise<boolean> => {
    const info = await d.get(`/blob/${cid}/info`).catch(() => undefined)
    return info?.status === 200 && info.body.layers.includes('reciprocal')
  }

  it('copies an agent\'s reciprocal pins onto the nodes of agents who granted it storage, within quota', async () => {
    const env = { HEARTH_REPLICATION_INTERVAL_MS: '500', HEARTH_FETCH_TIMEOUT_MS: '5000' }
    const owner = await spawnDaemon(join(dir.path, 'owner'), env)
    daemons.push(owner)
    const ownerAddr = (await owner.get('/p2p/status')).body.addresses[0]
    const [b, c, d] = await Promise.all(['b', 'c', 'd'].map(async n => await spawnDaemon(join(dir.path, n), { ...env, HEARTH_BOOTSTRAP: ownerAddr })))
    daemons.push(b, c, d)
    const ownerAgent = (await post(owner, '/trust/init')).agent_id
    for (const x of [b, c, d]) await post(x, '/trust/init')
    const bGrant = (await post(b, '/trust/grants', { agent: ownerAgent, layer: 'reciprocal', quota: '20MiB' })).id
    await post(c, '/trust/grants', { agent: ownerAgent, layer: 'reciprocal', quota: '4MiB' })

    const first = await addBlob(owner, randomBytes(3 * MiB), 'reciprocal')
    const second = await addBlob(owner, randomBytes(2 * MiB), 'reciprocal')
    const own = await addBlob(owner, randomBytes(1 * MiB), 'sovereign')

    await waitFor(async () => await holds(b, first) && await holds(b, second), 30_000, 'B to hold both reciprocal blobs')
    // C's 4 MiB grant fits one of the two, whichever it fetched first
    const cStatus = await waitFor(async () => {
      const st = (await c.get('/replication/status')).body
      return JSON.stringify(st.roots.map((r: any) => r.state).sort()) === '["held","over-quota"]' ? st : undefined
    }, 30_000, 'C to hold one and refuse the other')
    assert.notEqual(await holds(c, first), await holds(c, second), 'C keeps to its 4 MiB grant')
    assert.ok(cStatus.policy[0].used_bytes <= 4 * MiB)

    assert.equal(await holds(b, own), false, 'sovereign pins are not replicated under a reciprocal grant')
    // D granted nothing: it never stores the owner's content
    assert.equal((await d.get(`/blob/${first}/info`)).status, 404)
    assert.deepEqual((await d.get('/replication/status')).body.roots, [])
    assert.equal((await d.get('/storage')).body.blocks.count, 0)

    // the owner lets one go: so do the holders
    await fetch(`${owner.url}/pins/${second}?layer=reciprocal`, { method: 'DELETE', headers: { authorization: `Bearer ${owner.token}` } })
    await waitFor(async () => !(await holds(b, second)), 30_000, 'B to let the unpinned blob go')
    assert.equal(await holds(b, first), true)

    const cli = await runCli(['replication'], cleanEnv({ HEARTH_DATA: b.dataDir }))
    assert.equal(cli.code, 0, cli.stderr)
    assert.match(cli.stdout, new RegExp(`for ${ownerAgent}\\s+reciprocal`))
    assert.match(cli.stdout, new RegExp(`${first}\\s+held`))
    assert.equal((await b.get('/p2p/status')).body.replication.held, 1)

    // why B holds it, from both sides: the grant rule and the rendezvous rank
    const bWhy = (await b.get(`/replication/explain/${first}`)).body.as_holder
    assert.equal(bWhy.length, 1)
    assert.equal(bWhy[0].rule, 'grant')
    assert.equal(bWhy[0].grant.id, bGrant)
    assert.equal(bWhy[0].grant.quota_bytes, 20 * MiB)
    assert.equal(bWhy[0].owner, ownerAgent)
    assert.ok(bWhy[0].rank >= 1 && bWhy[0].rank <= bWhy[0].candidates_total, JSON.stringify(bWhy[0]))
    assert.equal(bWhy[0].reason, 'chosen')
    const ownerRow = async (): Promise<any> => (await owner.get(`/replication/explain/${first}`)).body.as_owner[0].candidates.find((x: any) => x.grant === bGrant)
    assert.equal((await ownerRow())?.reason, 'chosen')
    assert.equal((await ownerRow())?.rank, bWhy[0].rank)

    // B revokes its grant: it is no longer a candidate on either side, and lets the copy go
    await post(b, '/trust/revocations', { target: bGrant })
    await waitFor(async () => (await b.get(`/replication/explain/${first}`)).body.as_holder.length === 0, 30_000, 'B to stop holding under the revoked grant')
    await waitFor(async () => await ownerRow() === undefined, 30_000, 'the owner to drop B as a candidate')
    await waitFor(async () => !(await holds(b, first)), 30_000, 'B to let the copy go')
  })

  it('keeps a target of copies spread over failure domains, and repairs onto another node when a holder dies', async () => {
    const env = { HEARTH_REPLICATION_INTERVAL_MS: '500', HEARTH_FETCH_TIMEOUT_MS: '5000' }
    const owner = await spawnDaemon(join(dir.path, 'owner2'), env)
    daemons.push(owner)
    const ownerAddr = (await owner.get('/p2p/status')).body.addresses[0]
    const racks: Record<string, string> = { b2: 'r1', c2: 'r2', d2: 'r1' }
    const holders = await Promise.all(Object.entries(racks).map(async ([n, rack]) => await spawnDaemon(join(dir.path, n), { ...env, HEARTH_BOOTSTRAP: ownerAddr, HEARTH_LABELS: `rack=${rack}` })))
    daemons.push(...holders)
    const ownerAgent = (await post(owner, '/trust/init')).agent_id
    for (const h of holders) {
      await post(h, '/trust/init')
      await post(h, '/trust/grants', { agent: ownerAgent, layer: 'reciprocal', quota: '20MiB' })
    }
    const cid = await addBlob(owner, randomBytes(2 * MiB), 'reciprocal')

    const holding = async (): Promise<DaemonProc[]> => {
      const out: DaemonProc[] = []
      for (const h of holders) if (h.proc.exitCode == null && h.proc.signalCode == null && await holds(h, cid)) out.push(h)
      return out
    }
    const ownView = async (): Promise<any> => (await owner.get('/replication/status')).body.own.find((r: any) => r.cid === cid)
    // steady state: exactly the target, one per rack
    await waitFor(async () => (await holding()).length === 2 && (await ownView())?.state === 'ok', 30_000, 'two copies confirmed')
    await new Promise(resolve => setTimeout(resolve, 2000))
    const first = await holding()
    assert.equal(first.length, 2, 'no more copies than the target')
    assert.deepEqual(first.map(h => racks[h.dataDir.split('/').pop()!]).sort(), ['r1', 'r2'], 'spread over both racks')
    assert.deepEqual((await ownView()).holders.map((x: any) => x.domain).sort(), ['//r1', '//r2'])

    // the rack-1 holder dies: the other rack-1 node takes over
    const gone = first.find(h => racks[h.dataDir.split('/').pop()!] === 'r1')!
    await gone.kill('SIGKILL')
    const spare = holders.find(h => h !== gone && racks[h.dataDir.split('/').pop()!] === 'r1')!
    await waitFor(async () => await holds(spare, cid), 30_000, 'the spare rack-1 node to repair the copy')
    await waitFor(async () => (await ownView())?.holders.length === 2 && (await ownView())?.state === 'ok', 30_000, 'the owner to see two live holders again')
  })
})
