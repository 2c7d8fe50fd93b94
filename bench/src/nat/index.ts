import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { median, repoRoot } from '../lib.js'
import type { Measurement, Ratio, Scenario } from '../lib.js'
import { MiB, randomFile } from '../tools.js'
import type { NsDaemon } from '../../../packages/node/dist/test/netns.js'

// the suite's network-namespace harness (pnpm build builds it with the tests); by path, as dist is one folder deeper than src
type Harness = typeof import('../../../packages/node/dist/test/netns.js')
const harness = async (): Promise<Harness> => await import(pathToFileURL(join(repoRoot, 'packages/node/dist/test/netns.js')).href) as Harness

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function until (what: string, limitMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - start
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

const status = async (d: NsDaemon): Promise<any> => (await d.call('GET', '/p2p/status')).body
const pathTo = async (from: NsDaemon, to: NsDaemon): Promise<string | undefined> => (await status(from)).peers.find((p: any) => p.peer_id === to.peerId)?.path
const circuitOf = async (d: NsDaemon): Promise<string> => (await status(d)).addresses.find((a: string) => a.includes('/p2p-circuit'))

/** Reads a blob at `reader` that only `holder` has (read-through over whatever connection they share); MiB/s */
async function readThrough (reader: NsDaemon, cid: string, bytes: number, out: string): Promise<number> {
  const start = process.hrtime.bigint()
  const r = await reader.transfer('GET', `/blob/${cid}`, { output: out })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  if (r.status !== 200) throw new Error(`read-through at ${reader.ns} answered ${r.status}`)
  await rm(out, { force: true })
  return bytes / MiB / seconds
}

const scenario: Scenario = {
  name: 'nat',
  description: 'two homes behind their own NAT routers and a relaying rack, in network namespaces: time from start to a direct connection, read-through throughput over the relay against the punched direct path, and hole-punch successes over repeated tries (endpoint-independent NAT), with a symmetric NAT that must stay relayed',
  run: async ({ quick }) => {
    const { createNet, netnsUnavailable, nsDaemon } = await harness()
    const why = netnsUnavailable()
    if (why != null) throw new Error(`the nat scenario needs network namespaces: ${why}`)
    const tries = quick ? 5 : 20
    const size = quick ? 32 * MiB : 128 * MiB
    const work = await mkdtemp(join(tmpdir(), 'hearth-bench-nat-'))
    const net = await createNet()
    const daemons: NsDaemon[] = []
    const m: Measurement[] = []
    const ratios: Ratio[] = []
    const notes: string[] = []
    try {
      const rack = await nsDaemon(await net.publicHost('rack', '11.0.0.10'), join(work, 'rack'), { HEARTH_RELAY: 'true', HEARTH_HOLD_OWN: 'false' })
      daemons.push(rack)
      const aNs = await net.home('home-a', '11.0.0.1', '192.168.1')
      const bNs = await net.home('home-b', '11.0.0.2', '192.168.2')
      const cNs = await net.home('home-c', '11.0.0.3', '192.168.3', { symmetric: true })
      // only home-a holds what it pins: the others read it through, over the path under test
      const env = { HEARTH_BOOTSTRAP: `/ip4/11.0.0.10/tcp/4101/p2p/${rack.peerId}`, HEARTH_TRUST_PULL_INTERVAL_MS: '1000', HEARTH_HOLD_OWN: 'false' }
      const started = Date.now()
      const [a, b, c] = await Promise.all([nsDaemon(aNs, join(work, 'a'), env), nsDaemon(bNs, join(work, 'b'), env), nsDaemon(cNs, join(work, 'c'), env)])
      daemons.push(a, b, c)
      await rack.call('POST', '/trust/init', {})
      for (const [d, name] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) {
        const invite = await rack.call('POST', '/trust/invites', {})
        const joined = await d.call('POST', '/trust/join', { invitation: invite.body.invitation, name })
        if (joined.status !== 200) throw new Error(`join ${name}: ${JSON.stringify(joined.body)}`)
      }
      await until('reservations', 60_000, async () => (await Promise.all([b, c].map(async d => (await status(d)).relay.reserved_on.length > 0))).every(Boolean))
      m.push({ name: 'start → both homes reserved on the rack', value: (Date.now() - started) / 1000, unit: 's' })
      const circuitB = await circuitOf(b)
      if ((await a.call('POST', '/p2p/connect', { addr: circuitB })).status !== 200) throw new Error('relayed connect a → b failed')
      await until('a direct connection a ↔ b', 30_000, async () => await pathTo(a, b) === 'direct')
      m.push({ name: 'start → direct a ↔ b (daemons started, paired, reserved, relayed, punched)', value: (Date.now() - started) / 1000, unit: 's' })

      // repeated punches: hang up, meet over the relay again, and see whether it turns direct
      const punchMs: number[] = []
      let successes = 0
      const punched = async (): Promise<number> => (await status(a)).hole_punch.successes + (await status(b)).hole_punch.successes
      for (let i = 0; i < tries; i++) {
        // both hang up; the sync's keep-alive redials through the relay at once (or, if not within 3 s, a dials the
        // circuit), and the relayed connection is punched again: a try succeeds when a new punch made it direct
        const before = await punched()
        await Promise.all([a.call('DELETE', `/p2p/peers/${b.peerId}`), b.call('DELETE', `/p2p/peers/${a.peerId}`)])
        const t0 = Date.now()
        await until('a relayed redial', 3000, async () => await pathTo(a, b) != null).catch(async () => { await a.call('POST', '/p2p/connect', { addr: circuitB }) })
        try {
          await until('a new punch', 20_000, async () => await punched() > before && await pathTo(a, b) === 'direct')
          successes++
          punchMs.push(Date.now() - t0)
        } catch { /* stayed relayed: counted as a failure */ }
        await sleep(1500)
      }
      m.push({ name: `hole punches that turned relayed → direct (of ${tries} tries)`, value: successes, unit: 'count' })
      const hp = (await status(b)).hole_punch
      notes.push(`home-b's punch counters: ${JSON.stringify({ attempts: hp.attempts, successes: hp.successes, failures: hp.failures })}`)
      if (punchMs.length > 0) m.push({ name: 'hang-up → relayed redial → punched direct, median', value: median(punchMs), unit: 'ms' })

      // the symmetric NAT: relayed, and stays so
      const toC = await a.call('POST', '/p2p/connect', { addr: await circuitOf(c) })
      if (toC.status !== 200 && await pathTo(a, c) == null) throw new Error(`relayed connect a → c failed: ${JSON.stringify(toC.body)}`)
      await until('the punch a ↔ c to be given up', 60_000, async () => {
        const last = [(await status(a)).hole_punch.last, (await status(c)).hole_punch.last]
        return last.some(l => l?.result === 'failed' && (l.peer === a.peerId || l.peer === c.peerId))
      })
      m.push({ name: 'symmetric NAT a ↔ c after the punch gave up: still relayed', value: await pathTo(a, c) === 'relayed' ? 1 : 0, unit: 'bool' })

      // throughput: one blob only home-a holds, read through at home-b (direct) and at home-c (relayed)
      const file = join(work, 'blob.bin')
      await randomFile(file, size)
      const added = await a.transfer('POST', '/blob?layer=sovereign', { upload: file })
      if (added.status !== 201) throw new Error(`add at home-a: ${JSON.stringify(added.body)}`)
      const cid = String(added.body.cid)
      const direct = await readThrough(b, cid, size, join(work, 'at-b.bin'))
      const relayed = await readThrough(c, cid, size, join(work, 'at-c.bin'))
      const label = `${size / MiB} MiB read-through`
      m.push({ name: `${label}, direct (punched)`, value: direct, unit: 'MiB/s' })
      m.push({ name: `${label}, relayed (symmetric NAT)`, value: relayed, unit: 'MiB/s', baseline: `${label}, direct (punched)` })
      ratios.push({ name: 'relayed / direct read-through', ours: `${label}, relayed (symmetric NAT)`, baseline: `${label}, direct (punched)`, ratio: relayed / direct })
      notes.push('the namespaces share one machine: the relay path costs the rack\'s CPU and a second pair of hops, not a slower link')
      return { measurements: m, ratios, notes }
    } finally {
      await Promise.all(daemons.map(async d => { await d.stop() }))
      await net.destroy()
      await rm(work, { recursive: true, force: true })
    }
  }
}

export default scenario
