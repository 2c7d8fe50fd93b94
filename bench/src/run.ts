/**
 * `pnpm bench [scenario ...] [--quick]` runs the named scenarios (all by
 * default), prints a table for each and writes JSON under bench/results/.
 */
import { printResult, writeResult } from './lib.js'
import type { Scenario } from './lib.js'

const registry: Record<string, () => Promise<Scenario>> = {
  startup: async () => (await import('./startup/index.js')).default,
  blobstore: async () => (await import('./blobstore/index.js')).default,
  trust: async () => (await import('./trust/index.js')).default,
  sync: async () => (await import('./sync/index.js')).default,
  replicate: async () => (await import('./replicate/index.js')).default,
  nat: async () => (await import('./nat/index.js')).default,
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  if (args.includes('--help')) {
    console.log(`usage: pnpm bench [--quick] [scenario ...]\nscenarios: ${Object.keys(registry).join(', ')}`)
    return
  }
  const quick = args.includes('--quick')
  const names = args.filter(a => !a.startsWith('--'))
  const unknown = names.filter(n => registry[n] == null)
  if (unknown.length > 0) {
    console.error(`unknown scenario: ${unknown.join(', ')} (known: ${Object.keys(registry).join(', ')})`)
    process.exit(2)
  }
  let failed = false
  for (const name of names.length > 0 ? names : Object.keys(registry)) {
    const scenario = await registry[name]()
    console.log(`\nrunning ${scenario.name}: ${scenario.description}`)
    try {
      const result = await scenario.run({ quick })
      printResult(scenario.name, result)
      console.log(`wrote ${await writeResult(scenario.name, result, { quick })}`)
    } catch (err) {
      failed = true
      console.error(`scenario ${name} failed:`, err)
    }
  }
  process.exit(failed ? 1 : 0)
}

await main()
