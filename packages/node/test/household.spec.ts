import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cleanEnv, runCli, spawnDaemon, tempDir, waitFor } from './helpers.js'
import type { DaemonProc } from './helpers.js'

const MiB = 1024 * 1024
const ENV = { HEARTH_REPLICATION_INTERVAL_MS: '500', HEARTH_PROOF_INTERVAL_MS: '1000', HEARTH_FETCH_TIMEOUT_MS: '5000', HEARTH_REPLICATION_TARGETS: 'sovereign=2' }

const post = async (d: DaemonProc, path: string, body?: unknown): Promise<any> => {
  const res = await fetch(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })
  const json = await res.json()
  assert.ok(res.status < 300, `${path}: ${JSON.stringify(json)}`)
  return json
}
const addBlob = async (d: DaemonProc, bytes: Buffer, layer = 'sovereign'): Promise<string> =>
  (await (await fetch(`${d.url}/blob?layer=${layer}`, { method: 'POST', headers: { authorization: `Bearer ${d.token}` }, body: bytes })).json() as any).cid
/** Pairs `device` with the agent whose key `home` holds, through an invitation, as `hearth trust invite` / `join` do. */
const pair = async (home: DaemonProc, device: DaemonProc, name: string): Promise<void> => {
  const { invitation } = await post(home, '/trust/invites')
  await post(device, '/trust/join', { invitation, name })
}
const holdsCopy = async (d: DaemonProc, cid: string): Promise<boolean> => {
  const info = await d.get(`/blob/${cid}/info`).catch(() => undefined)
  return info?.status === 200 && info.body.pins.some((p: any) => p.layer === 'sovereign' && p.owner != null)
}

describe('a household\'s own devices back each other up', () => {
  let dir: { path: string, remove: () => Promise<void> }
  const daemons: DaemonProc[] = []
  before(async () => { dir = await tempDir() })
  after(async () => { await Promise.all(daemons.map(async d => await d.kill('SIGKILL'))); await dir.remove() })

  /** Watches the owner's view of a root at every poll: `ok` must never show with fewer proven copies than the target. */
  const watchHealth = (owner: DaemonProc, cid: () => string | undefined): { states: string[], stop: () => Promise<void> } => {
    const states: string[] = []
    let running = true
    const loop = (async () => {
      while (running) {
        const own = (await owner.get('/replication/status').catch(() => undefined))?.body?.own?.find((r: any) => r.cid === cid())
        if (own != null) {
          const confirmed = own.holders.filter((h: any) => h.confirmed).length
          assert.equal(own.copies, confirmed, 'copies are the confirmed holders')
          if (own.state === 'ok') assert.ok(confirmed >= own.target, `ok with ${confirmed} of ${own.target}: ${JSON.stringify(own)}`)
          else assert.ok(confirmed < own.target, `${own.state} with ${confirmed} of ${own.target}`)
          if (own.state === 'unprotected') assert.equal(confirmed, 0)
          if (states[states.length - 1] !== own.state) states.push(own.state)
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    })()
    return { states, stop: async () => { running = false; await loop } }
  }

  it('copies a sovereign root onto two other devices of the agent, goes degraded when one dies, and is repaired by a new device', async () => {
    const laptop = await spawnDaemon(join(dir.path, 'laptop'), { ...ENV, HEARTH_LABELS: 'cluster=laptop' })
    daemons.push(laptop)
    const boot = { HEARTH_BOOTSTRAP: (await laptop.get('/p2p/status')).body.addresses[0] }
    const server = await spawnDaemon(join(dir.path, 'server'), { ...ENV, ...boot, HEARTH_LABELS: 'cluster=home' })
    const rack = await spawnDaemon(join(dir.path, 'rack'), { ...ENV, ...boot, HEARTH_LABELS: 'cluster=grandma' })
    daemons.push(server, rack)
    const agent = (await post(laptop, '/trust/init')).agent_id
    await pair(laptop, server, 'home server')
    await pair(laptop, rack, 'rack at grandma\'s')

    let cid: string | undefined
    const watch = watchHealth(laptop, () => cid)
    try {
      cid = await addBlob(laptop, randomBytes(3 * MiB + 17))
      const ok = await waitFor(async () => {
        const own = (await laptop.get('/replication/status')).body.own.find((r: any) => r.cid === cid)
        return own?.state === 'ok' ? own : undefined
      }, 60_000, 'two proven copies on the server and the rack')
      assert.deepEqual(ok.holders.map((h: any) => h.domain).sort(), ['/grandma/', '/home/'])
      assert.ok(ok.holders.every((h: any) => h.role === 'own-device' && h.confirmed && h.proof?.result === 'ok'))
      assert.ok(await holdsCopy(server, cid) && await holdsCopy(rack, cid), 'both hold a pinned copy for the agent')
      assert.equal((await server.get(`/blob/${cid}/info`)).body.pins[0].owner, agent)

      // the holder's side of the story
      const why = (await server.get(`/replication/explain/${cid}`)).body
      assert.equal(why.as_holder.length, 1)
      assert.equal(why.as_holder[0].rule, 'own-device')
      assert.equal(why.as_holder[0].state, 'held')
      assert.ok(why.as_holder[0].rank >= 1 && why.as_holder[0].rank <= 2)
      assert.equal(why.as_holder[0].domain, '/home/')
      assert.equal(why.as_holder[0].last_proof?.answer, 'ok')
      assert.match(why.pins[0].why, /own agent/)
      const cron = await runCli(['replication'], cleanEnv({ HEARTH_DATA: laptop.dataDir }))
      assert.equal(cron.code, 0, cron.stdout + cron.stderr)
      assert.match(cron.stdout, new RegExp(`${cid}\\s+sovereign.*ok\\s+2/2 proven copies`))

      // the rack is lost: the root goes degraded (no other device can hold it)
      await rack.kill('SIGKILL')
      await waitFor(async () => (await laptop.get('/replication/status')).body.own.find((r: any) => r.cid === cid)?.state === 'degraded', 60_000, 'degraded after the rack died')
      const lost = await runCli(['replication'], cleanEnv({ HEARTH_DATA: laptop.dataDir }))
      assert.equal(lost.code, 1, 'a cron check notices')
      assert.match(lost.stderr, /not backed up to target \(degraded\)/)
      const ownerWhy = (await laptop.get(`/replication/explain/${cid}`)).body.as_owner[0]
      const rackRow = ownerWhy.candidates.find((c: any) => c.name === 'rack at grandma\'s')
      assert.ok(['unreachable', 'failed-proof'].includes(rackRow.reason), JSON.stringify(rackRow))
      assert.equal(ownerWhy.candidates.find((c: any) => c.name === 'home server').reason, 'chosen')

      // a fourth device joins: repair makes it ok again
      const spare = await spawnDaemon(join(dir.path, 'spare'), { ...ENV, ...boot, HEARTH_LABELS: 'cluster=office' })
      daemons.push(spare)
      await pair(laptop, spare, 'office box')
      await waitFor(async () => (await laptop.get('/replication/status')).body.own.find((r: any) => r.cid === cid)?.state === 'ok', 60_000, 'ok again with the new device')
      assert.ok(await holdsCopy(spare, cid))
      const bytes = Buffer.from(await (await fetch(`${spare.url}/blob/${cid}`)).arrayBuffer())
      assert.equal(bytes.length, 3 * MiB + 17)
      // the watcher polls on its own: under load its last poll may predate the repair
      await waitFor(async () => watch.states[watch.states.length - 1] === 'ok', 10_000, 'the watcher to see ok too')
    } finally {
      await watch.stop()
    }
    assert.ok(watch.states.includes('degraded') && watch.states[watch.states.length - 1] === 'ok', watch.states.join(' → '))
    assert.ok(watch.states.indexOf('ok') > 0, `the first state seen was not ok: ${watch.states.join(' → ')}`)
  })

  it('with a laptop and a server only, target 2 reads degraded (1 of 2), never ok; a device that declines holds nothing', async () => {
    const laptop = await spawnDaemon(join(dir.path, 'laptop2'), ENV)
    daemons.push(laptop)
    const boot = { HEARTH_BOOTSTRAP: (await laptop.get('/p2p/status')).body.addresses[0] }
    const server = await spawnDaemon(join(dir.path, 'server2'), { ...ENV, ...boot })
    const phone = await spawnDaemon(join(dir.path, 'phone2'), { ...ENV, ...boot, HEARTH_HOLD_OWN: 'false' })
    daemons.push(server, phone)
    await post(laptop, '/trust/init')
    await pair(laptop, server, 'server')
    await pair(laptop, phone, 'phone')

    let cid: string | undefined
    const watch = watchHealth(laptop, () => cid)
    try {
      cid = await addBlob(laptop, randomBytes(2 * MiB))
      const own = await waitFor(async () => {
        const r = (await laptop.get('/replication/status')).body.own.find((x: any) => x.cid === cid)
        return r?.state === 'degraded' ? r : undefined
      }, 60_000, 'degraded with one proven copy')
      assert.equal(own.copies, 1)
      assert.equal(own.target, 2)
      // it stays so: nothing else can hold it
      await new Promise(resolve => setTimeout(resolve, 3000))
      assert.equal((await laptop.get('/replication/status')).body.own.find((x: any) => x.cid === cid).state, 'degraded')
      assert.equal((await laptop.get('/p2p/status')).body.replication.own.degraded, 1)
    } finally {
      await watch.stop()
    }
    assert.ok(!watch.states.includes('ok'), watch.states.join(' → '))

    assert.equal(await holdsCopy(phone, cid), false)
    assert.equal((await phone.get('/storage')).body.blocks.count, 0, 'the phone stored nothing')
    const why = (await laptop.get(`/replication/explain/${cid}`)).body.as_owner[0]
    assert.equal(why.candidates.find((c: any) => c.name === 'phone').reason, 'declined')
    assert.equal(why.candidates.find((c: any) => c.name === 'server').reason, 'chosen')
    const phoneWhy = (await phone.get(`/replication/explain/${cid}`)).body.as_holder[0]
    assert.equal(phoneWhy.state, 'declined')
    const cron = await runCli(['replication'], cleanEnv({ HEARTH_DATA: laptop.dataDir }))
    assert.equal(cron.code, 1, cron.stdout)
    assert.match(cron.stdout, /degraded\s+1\/2 proven copies/)
  })
})
