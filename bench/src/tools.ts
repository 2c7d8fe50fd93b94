import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { repoRoot } from './lib.js'

/** The bundled CLI, as `pnpm hearth` runs it. */
export const HEARTH_BIN = join(repoRoot, 'packages', 'node', 'dist', 'bundle', 'hearth.mjs')
export const MiB = 1024 * 1024

export function have (cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

export function requireTools (...cmds: string[]): void {
  const missing = cmds.filter(c => !have(c))
  if (missing.length > 0) throw new Error(`missing baseline tools: ${missing.join(', ')} (run bench/setup.sh)`)
}

/** Runs a command to completion; returns wall time in seconds and its stdout. */
export async function timed (cmd: string, args: string[]): Promise<{ seconds: number, stdout: string }> {
  const t0 = performance.now()
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`)
  return { seconds: (performance.now() - t0) / 1000, stdout }
}

/**
 * Runs a command under bash's `time`: its wall time and the CPU time (user +
 * system, all its threads) it used, in seconds. Its output is discarded.
 */
export async function cpuTimed (cmd: string, args: string[]): Promise<{ seconds: number, cpuSeconds: number }> {
  const { stdout } = await timed('bash', ['-c', 'TIMEFORMAT="%R %U %S"; { time "$@" > /dev/null; } 2>&1', 'bash', cmd, ...args])
  const [real, user, sys] = stdout.trim().split(/\s+/).slice(-3).map(Number)
  return { seconds: real, cpuSeconds: user + sys }
}

/** Writes `bytes` of random data, 1 MiB at a time. */
export async function randomFile (path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path)
  for (let left = bytes; left > 0; left -= MiB) {
    if (!out.write(randomBytes(Math.min(MiB, left)))) await new Promise<void>(resolve => out.once('drain', () => resolve()))
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => err != null ? reject(err) : resolve()))
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}

/** Reads a file once (into /dev/null, not into memory) so every contender starts with it in the page cache. */
export async function warm (path: string): Promise<void> {
  await timed('sh', ['-c', `cat "${path}" > /dev/null`]).catch(() => {})
}

export interface Nginx { url: string, stop: () => Promise<void> }

/** nginx with sendfile serving `root` on a free loopback port, in the foreground. */
export async function startNginx (root: string, work: string): Promise<Nginx> {
  const port = await freePort()
  await mkdir(join(work, 'nginx', 'logs'), { recursive: true })
  const conf = join(work, 'nginx', 'nginx.conf')
  await writeFile(conf, `
daemon off;
worker_processes auto;
pid ${join(work, 'nginx', 'nginx.pid')};
error_log ${join(work, 'nginx', 'logs', 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${join(work, 'nginx', 'body')};
  proxy_temp_path ${join(work, 'nginx', 'proxy')};
  fastcgi_temp_path ${join(work, 'nginx', 'fastcgi')};
  uwsgi_temp_path ${join(work, 'nginx', 'uwsgi')};
  scgi_temp_path ${join(work, 'nginx', 'scgi')};
  types { application/octet-stream bin; }
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`)
  const proc = spawn('nginx', ['-c', conf, '-p', join(work, 'nginx')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  proc.stderr.on('data', d => { err += String(d) })
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(url + '/', proc, () => err)
  return { url, stop: async () => { await stopProc(proc) } }
}

export async function stopProc (proc: ChildProcess): Promise<void> {
  if (proc.exitCode != null || proc.signalCode != null) return
  const exited = new Promise(resolve => proc.on('exit', resolve))
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

async function waitForHttp (url: string, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (proc.exitCode != null) throw new Error(`exited early: ${output()}`)
    try { await (await fetch(url)).arrayBuffer(); return } catch { /* not yet */ }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`${url} did not answer: ${output()}`)
}

export interface Daemon {
  url: string
  token: string
  pid: number
  proc: ChildProcess
  stop: () => Promise<void>
  /** exit status and the last of its stderr, for error messages */
  stderrTail: () => string
}

/** extra node flags for every daemon a bench starts, e.g. HEARTH_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them */
const NODE_ARGS = (process.env.HEARTH_BENCH_NODE_ARGS ?? '').split(' ').filter(a => a !== '')

/** The environment of a daemon on loopback with p2p on (free ports, no mDNS), for `startHearth`. */
export const P2P_ENV = { ENABLE_P2P: 'true', P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true' }

/** `hearth daemon` on free ports, p2p off unless `env` turns it on (see P2P_ENV), in `dataDir`. */
export async function startHearth (dataDir: string, env: Record<string, string> = {}, timeoutMs = 20_000): Promise<Daemon> {
  const proc = spawn(process.execPath, [...NODE_ARGS, HEARTH_BIN, 'daemon'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HEARTH_DATA: dataDir, HEARTH_HTTP_PORT: '0', ENABLE_P2P: 'false', HEARTH_LOG_LEVEL: 'warn', ...env }
  })
  let err = ''
  proc.stderr.on('data', d => { err = (err + String(d)).slice(-4000) })
  const stderrTail = (): string => `exit ${proc.exitCode ?? proc.signalCode ?? 'none'}; ${err}`
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (proc.exitCode != null) throw new Error(`hearth exited early: ${err}`)
    try {
      const info = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
      if (info.pid === proc.pid && (await fetch(`${info.url}/ready`)).status === 200) {
        const token = (await readFile(join(dataDir, 'api-token'), 'utf8')).trim()
        return { url: info.url, token, pid: proc.pid!, proc, stderrTail, stop: async () => { await stopProc(proc) } }
      }
    } catch { /* not yet */ }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  proc.kill('SIGKILL')
  throw new Error(`hearth not ready: ${err}`)
}

/** Downloads with curl to /dev/null; bytes per second as curl measured them. */
export async function curlSpeed (url: string): Promise<{ bytesPerSecond: number, bytes: number }> {
  const { stdout } = await timed('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', url])
  const [speed, size] = stdout.trim().split(' ').map(Number)
  return { bytesPerSecond: speed, bytes: size }
}

/** wrk against one URL; requests per second. */
export async function wrkRps (url: string, seconds: number, connections = 64): Promise<number> {
  const { stdout } = await timed('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, url])
  const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout)
  if (m == null) throw new Error(`cannot read wrk output: ${stdout}`)
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)
  if (errors != null) throw new Error(`wrk saw ${errors[1]} failed responses from ${url}`)
  return Number(m[1])
}

export async function peakRssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024
}
