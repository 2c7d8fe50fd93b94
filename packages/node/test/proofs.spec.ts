import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { CID } from 'multiformats/cid'
import { spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

const MiB = 1024 * 1024

/**
 * Holding proofs between real daemons: honest holders pass, a holder whose
 * blocks went missing behind its back (rows deleted from its blobs.db while
 * it runs, or bytes corrupted between restarts) fails, stops counting, and
 * another node repairs the copy.
 */
describe('holding proofs', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  before(async () => { dir = await tempDir() })
  after(async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))); await dir.remove() })

  const env = { HEARTH_REPLICATION_INTERVAL_MS: '500', HEARTH_PROOF_INTERVAL_MS: '1000', HEARTH_FETCH_TIMEOUT_MS: '5000' }
  const post = async (d: DaemonProc, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })
    const json = await res.json()
    assert.ok(res.status < 300, `${path}: ${JSON.stringify(json)}`)
    return json
  }
  const holds = async (d: DaemonProc, cid: string): Promise<boolean> => {
    if (d.proc.exitCode != null || d.proc.signalCode != null) return false
    const info = await d.get(`/blob/${cid}/info`).catch(() => undefined)
    return info?.status === 200 && info.body.layers.includes('reciprocal')
  }
  const metric = async (d: DaemonProc, name: string, label: string): Promise<number> => {
    const text = await (await fetch(`${d.url}/metrics`)).text()
    const line = text.split('\n').find(l => l.startsWith(`${name}{${label}}`))
    return line == null ? 0 : Number(line.split(' ').pop())
  }
  /** An owner and three nodes that granted it reciprocal storage, on two racks; one blob pinned. */
  const family = async (name: string, racks: string[], extra: Record<string, string> = {}): Promise<{ owner: DaemonProc, holders: DaemonProc[], rack: (d: DaemonProc) => string, cid: string }> => {
    const owner = await spawnDaemon(join(dir.path, `${name}-owner`), { ...env, ...extra })
    daemons.push(owner)
    const ownerAddr = (await owner.get('/p2p/status')).body.addresses[0]
    const holders = await Promise.all(racks.map(async (rack, i) => await spawnDaemon(join(dir.path, `${name}-h${i}`), { ...env, ...extra, HEARTH_BOOTSTRAP: ownerAddr, HEARTH_LABELS: `rack=${rack}` })))
    daemons.push(...holders)
    const ownerAgent = (await post(owner, '/trust/init')).agent_id
    for (const h of holders) {
      await post(h, '/trust/init')
      await post(h, '/trust/grants', { agent: ownerAgent, layer: 'reciprocal', quota: '20MiB' })
    }
    const res = await fetch(`${owner.url}/blob?layer=reciprocal`, { method: 'POST', headers: { authorization: `Bearer ${owner.token}` }, body: randomBytes(3 * MiB + 1000) })
    const cid = (await res.json() as any).cid
    return { owner, holders, rack: d => racks[holders.indexOf(d)], cid }
  }
  const ownView = async (owner: DaemonProc, cid: string): Promise<any> => (await owner.get('/replication/status')).body.own.find((r: any) => r.cid === cid)

  it('honest holders pass; a holder whose blocks were deleted behind its back is mended from a peer, and two copies are proven again', async () => {
    const { owner, holders, rack, cid } = await family('live', ['r1', 'r2', 'r1'])
    await waitFor(async () => {
      const v = await ownView(owner, cid)
      // both holders, one per rack, proved their copy to the owner
      return v?.state === 'ok' && v.holders.length === 2 && v.holders.every((h: any) => h.confirmed && h.proof?.result === 'ok' && h.proof.by === 'self') &&
        JSON.stringify(v.holders.map((h: any) => h.domain).sort()) === '["//r1","//r2"]' && (await Promise.all(holders.map(async h => await holds(h, cid)))).filter(Boolean).length === 2
    }, 60_000, 'two holders, one per rack, that passed the owner\'s proofs')
    const holding = await Promise.all(holders.map(async h => await holds(h, cid)))
    const victim = holders.find((h, i) => holding[i] && rack(h) === 'r1')!
    const spare = holders.find((h, i) => !holding[i])!
    assert.ok(victim != null && spare != null && rack(spare) === 'r1')
    assert.ok(await metric(victim, 'hearth_proof_answers_total', 'answer="ok"') >= 1)

    // behind the daemon's back: every block of the blob goes from its database. The store holds its file
    // locked while it runs (one writer, rollback journal), so this happens while it is down: on the way
    // back it still claims the copy, and nothing but a challenge can tell it is gone
    await victim.kill('SIGTERM')
    const db = new Database(join(victim.dataDir, 'blobs.db'))
    const gone = db.prepare(`DELETE FROM blocks WHERE id IN (SELECT rb.block_id FROM root_blocks rb JOIN roots r ON r.id = rb.root_id WHERE r.cid = ?)`).run(CID.parse(cid).bytes).changes
    db.close()
    assert.ok(gone >= 4)
    const restarted = await spawnDaemon(victim.dataDir, victim.env)
    daemons.push(restarted)

    const restartedAt = Date.now()
    // the loss is noticed and mended from a peer: the victim fetches the blocks again, or the spare on its rack takes a copy
    const refetched = async (): Promise<number> => Math.max(await metric(restarted, 'hearth_blocks_exchanged_total', 'kind="received"'), await metric(spare, 'hearth_blocks_exchanged_total', 'kind="received"'))
    await waitFor(async () => await refetched() >= 4, 60_000, 'the lost blocks to come again from a peer').catch(async err => {
      console.error(JSON.stringify(await ownView(owner, cid), null, 1))
      console.error(restarted.output().split('\n').filter(l => /proof|challeng|warn/i.test(l)).slice(-20).join('\n'))
      throw err
    })
    // two confirmed copies again, each proven after the loss: the victim mended its copy, or the spare took over
    await waitFor(async () => {
      const v = await ownView(owner, cid)
      return v?.state === 'ok' && v.holders.filter((h: any) => h.confirmed && h.proof?.result === 'ok' && Date.parse(h.proof.at) > restartedAt).length >= 2
    }, 60_000, 'two holders proven again after the loss')
    // a node may still list its damaged copy for a pass after the owner counted two others: it lets it go once
    // it learns of the failure (or of the proven others), and from then on every copy still pinned reads back whole
    const answers: string[] = []
    await waitFor(async () => {
      let whole = 0
      for (const d of [restarted, spare]) {
        if (!(await holds(d, cid))) continue
        const res = await fetch(`${d.url}/blob/${cid}`)
        const back = Buffer.from(await res.arrayBuffer())
        if (res.status !== 200) answers.push(`${res.status} ${res.headers.get('content-type') ?? ''} ${back.toString().slice(0, 200)}`)
        if (res.status !== 200 || back.length !== 3 * MiB + 1000) return false
        whole++
      }
      return whole >= 1
    }, 30_000, 'every held copy to read back whole')
    // a damaged copy read in the meantime answers with a JSON error of its own, never an internal one
    for (const a of answers) assert.match(a, /^404 application\/json.*ERR_BLOCK_NOT_FOUND/)
  })

  it('a holder whose blocks were corrupted between restarts does not count until it has mended its copy from a peer', async () => {
    // one candidate only: nobody else can take over, so the holder must mend its own copy
    const { owner, holders, cid } = await family('restart', ['r1'], { HEARTH_REPLICATION_TARGETS: 'reciprocal=1' })
    const victim = holders[0]
    const victimDevice = (await victim.get('/trust/self')).body.device_id
    await waitFor(async () => (await ownView(owner, cid))?.holders.find((h: any) => h.device === victimDevice && h.confirmed && h.proof?.result === 'ok'), 60_000, 'the holder to pass')
    await victim.kill('SIGTERM')
    const db = new Database(join(victim.dataDir, 'blobs.db'))
    const changed = db.prepare(`UPDATE block_data SET data = randomblob(length(data)) WHERE id IN (SELECT rb.block_id FROM root_blocks rb JOIN roots r ON r.id = rb.root_id WHERE r.cid = ?)`).run(CID.parse(cid).bytes).changes
    db.close()
    assert.ok(changed >= 4)
    const restartedAt = Date.now()
    const restarted = await spawnDaemon(victim.dataDir, victim.env)
    daemons.push(restarted)

    // the store's scrub (or the read a challenge makes) quarantines the bad blocks; the holder fetches them again from
    // the owner, and passes a proof of the mended copy
    await waitFor(async () => {
      const h = (await ownView(owner, cid))?.holders.find((x: any) => x.device === victimDevice)
      return h?.confirmed === true && h.proof?.result === 'ok' && Date.parse(h.proof.at) > restartedAt
    }, 60_000, 'the holder to prove a mended copy')
    assert.equal((await restarted.get('/storage')).body.blocks.quarantined, 0)
    assert.ok(await metric(restarted, 'hearth_blocks_exchanged_total', 'kind="received"') >= changed, 'the bad blocks came again from a peer')
    const back = Buffer.from(await (await fetch(`${restarted.url}/blob/${cid}`)).arrayBuffer())
    assert.equal(back.length, 3 * MiB + 1000)
  })
})
