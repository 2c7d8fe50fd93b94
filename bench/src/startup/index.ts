import { median, percentile } from '../lib.js'
import type { Measurement, Ratio, Scenario } from '../lib.js'
import { bareNode } from './baseline.js'
import { hearthDaemon } from './hearth.js'
import { measureStart } from './spawn.js'
import type { Starter, StartSample } from './spawn.js'

const READY_TARGET_MS = 1000
const RSS_TARGET_MB = 120

async function sample (starter: Starter, runs: number, idleMs: number): Promise<StartSample[]> {
  const out: StartSample[] = []
  for (let i = 0; i < runs; i++) out.push(await measureStart(starter, idleMs))
  return out
}

const scenario: Scenario = {
  name: 'startup',
  description: 'time from spawn to /ready and idle RSS of `hearth daemon`, against a bare `node -e` HTTP server',
  run: async ({ quick }) => {
    const runs = quick ? 5 : 15
    const idleMs = quick ? 1000 : 3000
    const restart = await hearthDaemon({ fresh: false, p2p: true })
    const first = await hearthDaemon({ fresh: true, p2p: true })
    const local = await hearthDaemon({ fresh: false, p2p: false })
    const bare = bareNode()
    try {
      // one warm-up each so the page cache holds the modules for every contender
      await measureStart(restart, 0)
      await measureStart(bare, 0)
      const results: Array<[Starter, StartSample[]]> = []
      // interleave contenders so a noisy neighbour hits all of them alike
      const per: Map<Starter, StartSample[]> = new Map([[bare, []], [restart, []], [first, []], [local, []]])
      for (let i = 0; i < runs; i++) {
        for (const [starter, samples] of per) samples.push(...await sample(starter, 1, idleMs))
      }
      results.push(...per)
      const measurements: Measurement[] = []
      for (const [starter, samples] of results) {
        const ready = samples.map(s => s.readyMs)
        measurements.push({ name: `${starter.name}: ready median`, value: median(ready), unit: 'ms' })
        measurements.push({ name: `${starter.name}: ready p90`, value: percentile(ready, 90), unit: 'ms' })
        measurements.push({ name: `${starter.name}: idle RSS median`, value: median(samples.map(s => s.idleRssMb)), unit: 'MB' })
      }
      const get = (name: string): number => measurements.find(m => m.name === name)!.value
      const bareReady = get(`${bare.name}: ready median`)
      const bareRss = get(`${bare.name}: idle RSS median`)
      const ratios: Ratio[] = [
        { name: 'restart ready / bare node ready', ours: restart.name, baseline: bare.name, ratio: get(`${restart.name}: ready median`) / bareReady },
        { name: 'restart idle RSS / bare node RSS', ours: restart.name, baseline: bare.name, ratio: get(`${restart.name}: idle RSS median`) / bareRss },
        { name: 'restart ready median / 1 s target', ours: restart.name, baseline: 'target', ratio: get(`${restart.name}: ready median`) / READY_TARGET_MS, target: 1, atMost: true },
        { name: 'first start ready median / 1 s target', ours: first.name, baseline: 'target', ratio: get(`${first.name}: ready median`) / READY_TARGET_MS, target: 1, atMost: true },
        { name: 'restart idle RSS / 120 MB target', ours: restart.name, baseline: 'target', ratio: get(`${restart.name}: idle RSS median`) / RSS_TARGET_MB, target: 1, atMost: true }
      ]
      return { measurements, ratios, notes: [`${runs} runs each, interleaved; RSS read ${idleMs} ms after /ready answered`] }
    } finally {
      await Promise.all([restart.dispose(), first.dispose(), local.dispose()])
    }
  }
}

export default scenario
