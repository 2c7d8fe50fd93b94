import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'

/** One process start: how long until it answered, and its RSS once idle. */
export interface StartSample {
  readyMs: number
  idleRssMb: number
}

export interface Starter {
  name: string
  /** spawns the process; `readyUrl` resolves to the URL to poll once it is known */
  start: () => Promise<{ proc: ChildProcess, readyUrl: () => Promise<string | undefined> }>
  cleanup?: () => Promise<void>
}

async function rssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  return kb / 1024
}

/**
 * Spawns, polls the ready URL every 5 ms until it answers 200, waits
 * `idleMs`, reads VmRSS, and kills the process.
 */
export async function measureStart (starter: Starter, idleMs: number): Promise<StartSample> {
  const t0 = performance.now()
  const { proc, readyUrl } = await starter.start()
  let stderr = ''
  proc.stderr?.on('data', d => { stderr += String(d) })
  const exited = new Promise(resolve => proc.on('exit', resolve))
  try {
    let readyMs: number | undefined
    while (readyMs == null) {
      if (proc.exitCode != null) throw new Error(`${starter.name} exited early (${proc.exitCode}): ${stderr}`)
      if (performance.now() - t0 > 30_000) throw new Error(`${starter.name} not ready after 30 s`)
      const url = await readyUrl()
      if (url != null) {
        try {
          const res = await fetch(url)
          await res.arrayBuffer()
          if (res.status === 200) readyMs = performance.now() - t0
        } catch { /* not listening yet */ }
      }
      if (readyMs == null) await new Promise(resolve => setTimeout(resolve, 5))
    }
    await new Promise(resolve => setTimeout(resolve, idleMs))
    const idleRssMb = await rssMb(proc.pid!)
    return { readyMs, idleRssMb }
  } finally {
    proc.kill('SIGTERM')
    await exited
    await starter.cleanup?.()
  }
}

export function spawnNode (args: string[], env: Record<string, string | undefined>): ChildProcess {
  return spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
}
