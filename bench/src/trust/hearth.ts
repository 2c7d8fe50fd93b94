import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTrustGraph, verifyStatement } from '@hearth/trust'
import { percentile } from '../lib.js'
import { cpuSeconds } from './baseline.js'
import type { Corpus } from './corpus.js'
import type { SignedStatement, TrustGraph } from '@hearth/trust'

/** Ours: full envelope verification (size, canonical re-encoding, schema, time, signature), per CPU second. */
export function envelopeVerifyRate (statements: SignedStatement[], now: number): number {
  const start = cpuSeconds()
  for (const s of statements) verifyStatement(s.bytes, { now })
  return statements.length / (cpuSeconds() - start)
}

export interface QueryTiming { name: string, p50: number, p99: number }

export interface GraphResult { addRate: number, stored: number, timings: QueryTiming[], fileBytes?: number }

/** Loads the corpus into a real SQLite graph through `add` and times each query over random ids. */
export async function graphQueries (corpus: Corpus, samples: number): Promise<GraphResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-bench-trust-'))
  let graph: TrustGraph | undefined
  try {
    graph = createTrustGraph({ path: join(dir, 'trust.sqlite') }, { clock: { now: () => corpus.now } })
    const start = performance.now()
    for (const s of corpus.statements) graph.add(s.bytes)
    const addRate = corpus.statements.length / ((performance.now() - start) / 1000)
    const g = graph
    let seed = 12345
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    const agent = (): string => corpus.agents[rand(corpus.agents.length)]
    const device = (): string => corpus.devices[rand(corpus.devices.length)]
    const queries: Array<[string, () => unknown]> = [
      ['agentOfDevice', () => g.agentOfDevice(device())],
      ['mayWrite', () => g.mayWrite(device(), { owner: agent(), writers: [agent(), agent()] })],
      ['relationships', () => g.relationships(agent())],
      ['grantsGiven', () => g.grantsGiven(agent())],
      ['grantsReceived', () => g.grantsReceived(agent())],
      ['replicationPolicy', () => g.replicationPolicy({ agentId: agent(), labels: { region: 'eu' } })],
      ['agent', () => g.agent(agent())],
      ['statements page (1000)', () => g.statements({ since: rand(corpus.statements.length), limit: 1000 })]
    ]
    const timings: QueryTiming[] = []
    for (const [name, run] of queries) {
      for (let i = 0; i < 50; i++) run() // warm the page cache and the statement cache
      const times: number[] = []
      for (let i = 0; i < samples; i++) {
        const t = performance.now()
        run()
        times.push((performance.now() - t) * 1000)
      }
      timings.push({ name, p50: percentile(times, 50), p99: percentile(times, 99) })
    }
    const stored = g.graphSnapshot({ limit: 1 }).counts.statements
    return { addRate, stored, timings }
  } finally {
    graph?.close()
    await rm(dir, { recursive: true, force: true })
  }
}
