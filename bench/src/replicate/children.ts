import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { repoRoot } from '../lib.js'

/** libp2p 3 and Helia call Promise.withResolvers, which Node 20 lacks: the daemon's polyfill goes first */
const POLYFILL = join(repoRoot, 'packages', 'node', 'dist', 'src', 'polyfill.js')

export interface Child {
  proc: ChildProcess
  /** the next JSON line the child prints */
  next: <T = any>() => Promise<T>
  done: Promise<number | null>
}

/** Runs one of this folder's child scripts, reading its JSON lines. */
export function child (script: string, args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', POLYFILL, fileURLToPath(new URL(`./${script}.js`, import.meta.url)), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  proc.stderr!.on('data', d => { stderr += String(d) })
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]()
  const done = new Promise<number | null>(resolve => proc.on('exit', resolve))
  return {
    proc,
    done,
    next: async <T>() => {
      const r = await lines.next()
      if (r.done === true) throw new Error(`${script} ${args[0]} ended without an answer: ${stderr.slice(-2000)}`)
      return JSON.parse(r.value) as T
    }
  }
}
