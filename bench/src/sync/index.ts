import { median, percentile } from '../lib.js'
import type { Measurement, Ratio, Scenario } from '../lib.js'
import { runHearth } from './hearth.js'
import { runRepo } from './repo.js'

/** One contender's run: the initial sync of every document, then single changes. */
export interface SyncRun {
  seconds: number
  /** bytes the sync moved: Hearth counts its sync messages both ways, automerge-repo its socket's bytes both ways */
  bytes: number
  messages?: number
  latenciesMs: number[]
  rssMb: { sender: number, receiver: number }
  /** finds that came back unavailable and were asked again (automerge-repo) */
  retries?: number
}

const TIME_TARGET = 0.2
const LATENCY_TARGET_MS = 50

const scenario: Scenario = {
  name: 'sync',
  description: 'initial sync of 10,000 small documents between two daemons (--quick: 1,000) and one change reaching the other side, against two automerge-repo Repos over their WebSocket adapter',
  run: async ({ quick }) => {
    const count = quick ? 1000 : 10_000
    const samples = quick ? 20 : 50
    const notes: string[] = []
    const log = (s: string): void => { notes.push(s); console.log(`  ${s}`) }
    const hearth = await runHearth(count, samples, log)
    log(`hearth: ${count} documents in ${hearth.seconds.toFixed(1)} s`)
    const repo = await runRepo(count, samples)
    log(`automerge-repo: ${count} documents in ${repo.seconds.toFixed(1)} s${repo.retries != null && repo.retries > 0 ? ` (${repo.retries} finds came back unavailable and were asked again)` : ''}`)
    const m: Measurement[] = [
      { name: `hearth: initial sync of ${count} documents`, value: hearth.seconds, unit: 's', baseline: `automerge-repo: initial sync of ${count} documents` },
      { name: `automerge-repo: initial sync of ${count} documents`, value: repo.seconds, unit: 's' },
      { name: 'hearth: bytes moved (sync messages, both ways)', value: hearth.bytes, unit: 'B' },
      { name: 'hearth: messages (both ways)', value: hearth.messages ?? 0, unit: 'messages' },
      { name: 'automerge-repo: bytes moved (socket, both ways)', value: repo.bytes, unit: 'B' },
      { name: 'hearth: one change reaching B, median', value: median(hearth.latenciesMs), unit: 'ms' },
      { name: 'hearth: one change reaching B, p99', value: percentile(hearth.latenciesMs, 99), unit: 'ms' },
      { name: 'automerge-repo: one change reaching the client, median', value: median(repo.latenciesMs), unit: 'ms' },
      { name: 'automerge-repo: one change reaching the client, p99', value: percentile(repo.latenciesMs, 99), unit: 'ms' },
      { name: 'hearth: RSS after sync, sender / receiver', value: Math.max(hearth.rssMb.sender, hearth.rssMb.receiver), unit: 'MB' },
      { name: 'hearth: RSS sender', value: hearth.rssMb.sender, unit: 'MB' },
      { name: 'hearth: RSS receiver', value: hearth.rssMb.receiver, unit: 'MB' },
      { name: 'automerge-repo: RSS server', value: repo.rssMb.sender, unit: 'MB' },
      { name: 'automerge-repo: RSS client', value: repo.rssMb.receiver, unit: 'MB' },
      { name: 'hearth: CPU per document during the sync, sender', value: hearth.cpuMsPerDoc.sender, unit: 'ms' },
      { name: 'hearth: CPU per document during the sync, receiver', value: hearth.cpuMsPerDoc.receiver, unit: 'ms' },
      { name: `hearth: creating the ${count} documents over HTTP (setup, untimed above)`, value: hearth.setupSeconds, unit: 's' }
    ]
    const ratios: Ratio[] = [
      { name: 'initial sync time: hearth / automerge-repo', ours: m[0].name, baseline: m[1].name, ratio: hearth.seconds / repo.seconds, target: TIME_TARGET, atMost: true },
      { name: 'bytes: hearth / automerge-repo', ours: m[2].name, baseline: m[4].name, ratio: hearth.bytes / repo.bytes },
      { name: 'one change, median: hearth / 50 ms target', ours: m[5].name, baseline: 'target', ratio: median(hearth.latenciesMs) / LATENCY_TARGET_MS, target: 1, atMost: true },
      { name: 'one change, median: hearth / automerge-repo', ours: m[5].name, baseline: m[7].name, ratio: median(hearth.latenciesMs) / median(repo.latenciesMs) }
    ]
    notes.push(`hearth's latency runs from before its HTTP PATCH on A (request, change, fsync, sync, B's store, B's change stream) to the event on B's /stream/docs; automerge-repo's from handle.change on the server to the change event on the client`)
    notes.push('both serve from storage: automerge-repo from its Node filesystem adapter (written beforehand, loaded on request), Hearth from SQLite')
    return { measurements: m, ratios, notes }
  }
}

export default scenario
