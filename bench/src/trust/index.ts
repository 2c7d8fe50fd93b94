import { median } from '../lib.js'
import { nobleVerifyRate, rawSamples, rawVerifyRate } from './baseline.js'
import { buildCorpus } from './corpus.js'
import { envelopeVerifyRate, graphQueries } from './hearth.js'
import type { Measurement, Ratio, Scenario } from '../lib.js'

const TARGET_RATIO = 0.8

const scenario: Scenario = {
  name: 'trust',
  description: 'signed statement verification against raw native Ed25519 (node:crypto) on the same bytes; trust graph queries on a large graph',
  run: async ({ quick }) => {
    const graphSize = quick ? 10_000 : 100_000
    const verifySamples = quick ? 200 : 500
    const batch = 25
    const rounds = quick ? 24 : 60
    const querySamples = quick ? 500 : 2000

    const buildStart = performance.now()
    const corpus = buildCorpus(graphSize)
    const buildSeconds = (performance.now() - buildStart) / 1000

    // Verification: the same statements both ways in short alternating rounds
    // (ABBA order), so a busy neighbour or a clock change hits both alike; the
    // ratio is the median of the per-round ratios.
    const step = Math.max(1, Math.floor(corpus.statements.length / verifySamples))
    const sample = corpus.statements.filter((_, i) => i % step === 0).slice(0, verifySamples)
    const raw = rawSamples(sample)
    rawVerifyRate(raw.slice(0, 20))
    envelopeVerifyRate(sample.slice(0, 20), corpus.now)
    const oursRates: number[] = []
    const rawRates: number[] = []
    const perRound: number[] = []
    for (let r = 0; r < rounds; r++) {
      const at = (r * batch) % sample.length
      const ours = sample.slice(at, at + batch)
      const base = raw.slice(at, at + batch)
      let o: number
      let b: number
      if (r % 2 === 0) {
        b = rawVerifyRate(base)
        o = envelopeVerifyRate(ours, corpus.now)
      } else {
        o = envelopeVerifyRate(ours, corpus.now)
        b = rawVerifyRate(base)
      }
      oursRates.push(o)
      rawRates.push(b)
      perRound.push(o / b)
    }
    const ours = median(oursRates)
    const base = median(rawRates)

    const noble = nobleVerifyRate(raw.slice(0, Math.min(raw.length, quick ? 100 : 300)))
    const graph = await graphQueries(corpus, querySamples)
    const measurements: Measurement[] = [
      { name: 'raw native verify of the signed bytes', value: base, unit: 'verifications/CPU s' },
      { name: 'raw noble ed.verify (strict) of the signed bytes', value: noble, unit: 'verifications/CPU s' },
      { name: 'verifyStatement (envelope + signature)', value: ours, unit: 'statements/CPU s', baseline: 'raw native verify of the signed bytes' },
      { name: `graph add (verify + store), ${graphSize} statements`, value: graph.addRate, unit: 'statements/s' },
      { name: 'statements stored', value: graph.stored, unit: 'statements' },
      { name: 'corpus signing time', value: buildSeconds, unit: 's' }
    ]
    for (const t of graph.timings) {
      measurements.push({ name: `${t.name} p50`, value: t.p50, unit: 'µs' })
      measurements.push({ name: `${t.name} p99`, value: t.p99, unit: 'µs' })
    }
    const ratios: Ratio[] = [{
      // the trust issue's baseline: raw @noble/ed25519, which verification used before it took the native path
      name: 'verifyStatement / raw noble ed.verify',
      ours: 'verifyStatement (envelope + signature)',
      baseline: 'raw noble ed.verify (strict) of the signed bytes',
      ratio: ours / noble,
      target: TARGET_RATIO
    }, {
      name: 'verifyStatement / raw native verify',
      ours: 'verifyStatement (envelope + signature)',
      baseline: 'raw native verify of the signed bytes',
      ratio: median(perRound)
    }]
    return {
      measurements,
      ratios,
      notes: [
        `${sample.length} statements of all six types; ${rounds} rounds of ${batch} verifications each way, ABBA order; the native ratio = median of per-round ratios (min ${Math.min(...perRound).toFixed(3)}, max ${Math.max(...perRound).toFixed(3)}); the envelope's verification is strict (noble's non-ZIP-215 rules) on a native fast path; rates in process CPU time`,
        `graph of ${graphSize} statements (${corpus.agents.length} agents, ${corpus.devices.length} devices) in a SQLite file, loaded through add(); ${querySamples} timed calls per query on random ids`
      ]
    }
  }
}

export default scenario
