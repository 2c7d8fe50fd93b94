import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One measured row: what ran, the figure, and its unit. */
export interface Measurement {
  name: string
  value: number
  unit: string
  /** the baseline row this one is compared against, by name */
  baseline?: string
}

/** A comparison of ours against a baseline from the same run, with its target. */
export interface Ratio {
  name: string
  ours: string
  baseline: string
  ratio: number
  /** the ratio must be at least this (or at most, with `atMost`) */
  target?: number
  atMost?: boolean
}

export interface ScenarioResult {
  measurements: Measurement[]
  ratios: Ratio[]
  notes?: string[]
}

/**
 * A benchmark scenario. Each lives in `bench/src/<name>/` with one file per
 * implementation (ours, the baseline) and an `index.ts` that exports one.
 */
export interface Scenario {
  name: string
  description: string
  run: (options: { quick: boolean }) => Promise<ScenarioResult>
}

export const benchRoot = fileURLToPath(new URL('../..', import.meta.url))
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]
}

function fmt (n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 100) return n.toFixed(0)
  if (Math.abs(n) >= 10) return n.toFixed(1)
  return n.toFixed(3)
}

export function ratioMet (r: Ratio): boolean | undefined {
  if (r.target == null) return undefined
  return r.atMost === true ? r.ratio <= r.target : r.ratio >= r.target
}

/** Prints a scenario's result as two plain tables. */
export function printResult (scenario: string, result: ScenarioResult): void {
  const rows = result.measurements.map(m => [m.name, fmt(m.value), m.unit])
  const w0 = Math.max(11, ...rows.map(r => r[0].length))
  const w1 = Math.max(5, ...rows.map(r => r[1].length))
  console.log(`\n## ${scenario}\n`)
  console.log(`${'measurement'.padEnd(w0)}  ${'value'.padStart(w1)}  unit`)
  for (const r of rows) console.log(`${r[0].padEnd(w0)}  ${r[1].padStart(w1)}  ${r[2]}`)
  if (result.ratios.length > 0) {
    console.log('')
    const rr = result.ratios.map(r => {
      const met = ratioMet(r)
      const target = r.target == null ? '-' : `${r.atMost === true ? '<=' : '>='} ${r.target}`
      return [r.name, fmt(r.ratio), target, met == null ? 'report' : met ? 'met' : 'MISSED']
    })
    const v0 = Math.max(5, ...rr.map(r => r[0].length))
    console.log(`${'ratio'.padEnd(v0)}  ${'value'.padStart(8)}  ${'target'.padStart(8)}  status`)
    for (const r of rr) console.log(`${r[0].padEnd(v0)}  ${r[1].padStart(8)}  ${r[2].padStart(8)}  ${r[3]}`)
  }
  for (const n of result.notes ?? []) console.log(`note: ${n}`)
}

/** Writes `bench/results/<scenario>.json` and returns its path. */
export async function writeResult (scenario: string, result: ScenarioResult, extra: Record<string, unknown> = {}): Promise<string> {
  const dir = join(benchRoot, 'results')
  await mkdir(dir, { recursive: true })
  const path = join(dir, `${scenario}.json`)
  await writeFile(path, JSON.stringify({
    scenario,
    date: new Date().toISOString(),
    node: process.version,
    ...extra,
    ...result,
    ratios: result.ratios.map(r => ({ ...r, met: ratioMet(r) ?? null }))
  }, null, 2) + '\n')
  return path
}
