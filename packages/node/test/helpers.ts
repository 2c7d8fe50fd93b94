import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// the bundled CLI, which is what `pnpm hearth`, `pnpm start` and the `hearth` bin run
export const BIN = fileURLToPath(new URL('../bundle/hearth.mjs', import.meta.url))

export async function tempDir (prefix = 'hearth-test-'): Promise<{ path: string, remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, remove: async () => { await rm(path, { recursive: true, force: true }) } }
}

/** The parent's environment without any HEARTH_* or deployment variables, so tests are hermetic. */
export function cleanEnv (extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v == null || k.startsWith('HEARTH_') || ['ENABLE_P2P', 'P2P_PORT', 'DISABLE_MDNS'].includes(k)) continue
    env[k] = v
  }
  return { ...env, HEARTH_LOG_LEVEL: 'info', ...extra }
}

export interface RunResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs `hearth <args>` to completion. */
export async function runCli (args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<RunResult> {
  return await runCliWithInput(args, env, undefined, timeoutMs)
}

/** Runs `hearth <args>` with `input` on its standard input. */
export async function runCliWithInput (args: string[], env: Record<string, string>, input: Buffer | undefined, timeoutMs = 30_000): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: [input == null ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
  if (input != null) child.stdin!.end(input)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', d => { stdout += String(d) })
  child.stderr!.on('data', d => { stderr += String(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.on('exit', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  return { code, signal, stdout, stderr }
}

export interface DaemonProc {
  proc: ChildProcess
  dataDir: string
  url: string
  peerId: string
  token: string
  env: Record<string, string>
  output: () => string
  /** resolves with the exit code and how long the exit took after the signal */
  kill: (signal?: NodeJS.Signals) => Promise<{ code: number | null, signal: NodeJS.Signals | null, ms: number }>
  get: <T = any>(path: string) => Promise<{ status: number, body: T }>
}

/**
 * Spawns a real daemon process on loopback with free ports and waits until
 * it answers /ready.
 */
export async function spawnDaemon (dataDir: string, extraEnv: Record<string, string> = {}, args: string[] = []): Promise<DaemonProc> {
  const env = cleanEnv({
    HEARTH_DATA: dataDir,
    HEARTH_HTTP_PORT: '0',
    P2P_PORT: '0',
    HEARTH_P2P_HOST: '127.0.0.1',
    DISABLE_MDNS: 'true',
    ...extraEnv
  })
  const proc = spawn(process.execPath, [BIN, 'daemon', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout!.on('data', d => { out += String(d) })
  proc.stderr!.on('data', d => { out += String(d) })
  const exited = new Promise<[number | null, NodeJS.Signals | null]>(resolve => proc.on('exit', (c, s) => resolve([c, s])))

  const deadline = Date.now() + 20_000
  let info: { url: string, peer_id: string, pid: number } | undefined
  while (Date.now() < deadline) {
    if (proc.exitCode != null) throw new Error(`daemon exited with ${proc.exitCode}:\n${out}`)
    try {
      const parsed = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
      if (parsed.pid === proc.pid) {
        const res = await fetch(`${parsed.url}/ready`)
        if (res.status === 200) { info = parsed; break }
      }
    } catch { /* not written yet, or not answering yet */ }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  if (info == null) {
    proc.kill('SIGKILL')
    throw new Error(`daemon did not become ready:\n${out}`)
  }
  const token = extraEnv.HEARTH_API_TOKEN ?? (await readFile(join(dataDir, 'api-token'), 'utf8')).trim()
  const url = info.url
  return {
    proc,
    dataDir,
    url,
    peerId: info.peer_id,
    token,
    env,
    output: () => out,
    kill: async (signal = 'SIGTERM') => {
      if (proc.exitCode != null || proc.signalCode != null) return { code: proc.exitCode, signal: proc.signalCode, ms: 0 }
      const t0 = Date.now()
      proc.kill(signal)
      const [code, sig] = await exited
      return { code, signal: sig, ms: Date.now() - t0 }
    },
    get: async (path: string) => {
      const res = await fetch(url + path)
      return { status: res.status, body: await res.json() as any }
    }
  }
}

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function waitFor<T> (check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v
    } catch (err) { last = err }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}${last != null ? `: ${String(last)}` : ''}`)
}

/** A loopback port that nothing listens on (bound once, then released). */
export async function closedPort (): Promise<number> {
  const { createServer } = await import('node:net')
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}
