import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** A child process that talks in JSON lines: send commands, wait for answers. */
export interface JsonChild {
  proc: ChildProcess
  send: (msg: unknown) => void
  /** the next line (after those already taken) that matches */
  next: <T = any>(match: (msg: any) => boolean, timeoutMs?: number) => Promise<T>
  stop: () => Promise<void>
}

export function spawnJsonChild (script: string, args: string[]): JsonChild {
  const proc = spawn(process.execPath, [fileURLToPath(new URL(`./${script}.js`, import.meta.url)), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const queue: any[] = []
  const waiters: Array<() => void> = []
  let stderr = ''
  proc.stderr!.on('data', d => { stderr += String(d) })
  createInterface({ input: proc.stdout! }).on('line', line => {
    try { queue.push(JSON.parse(line)) } catch { return }
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise(resolve => proc.on('exit', resolve))
  return {
    proc,
    send: msg => { proc.stdin!.write(JSON.stringify(msg) + '\n') },
    next: async (match, timeoutMs = 600_000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const i = queue.findIndex(match)
        if (i >= 0) return queue.splice(i, 1)[0]
        if (proc.exitCode != null) throw new Error(`${script} exited ${proc.exitCode}: ${stderr.slice(-2000)}`)
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`${script}: timed out waiting for an answer: ${stderr.slice(-2000)}`)
        await new Promise<void>(resolve => { waiters.push(resolve); setTimeout(resolve, Math.min(left, 1000)) })
      }
    },
    stop: async () => {
      if (proc.exitCode == null) proc.kill('SIGKILL')
      await exited
    }
  }
}
