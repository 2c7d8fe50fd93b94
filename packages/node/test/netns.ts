import { execFile, execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { BIN, cleanEnv } from './helpers.js'

const run = promisify(execFile)

/**
 * Network namespaces for tests that need routers between daemons (NAT,
 * relays, partitions). A "wan" namespace holds a bridge: the public side.
 * A public host sits on it directly (give it an address libp2p takes for a
 * public one: not 10/8, 192.168/16, 203.0.113/24 or another reserved range,
 * or libp2p never asks whether it is reachable); a home sits behind a router namespace
 * that masquerades its LAN onto the wan (iptables MASQUERADE, which maps a
 * LAN socket to one wan port whatever it talks to: endpoint-independent, so
 * hole punching can work; `symmetric` randomises the port per destination).
 * Every name carries a prefix unique to the run, and `destroy` removes all
 * of it (deleting a namespace deletes its interfaces); a stale prefix left
 * by a killed run is removed by the next one.
 *
 * Daemons run inside their namespace with `ip netns exec`; the test talks to
 * their HTTP API through `curl` run in the same namespace, so no route from
 * the test's own namespace is needed, and none that could bypass a NAT exists.
 */
export interface Net {
  prefix: string
  /** adds a host on the wan with `ip`; returns its namespace */
  publicHost: (name: string, ip: string) => Promise<string>
  /** adds a router with wan address `wanIp` and a LAN `lan` (x.y.z), and a home behind it at x.y.z.2 */
  home: (name: string, wanIp: string, lan: string, opts?: { symmetric?: boolean }) => Promise<string>
  /** removes every namespace (and so every interface and rule) this net made */
  destroy: () => Promise<void>
}

/** Why namespaces cannot be made here, or undefined when they can */
export function netnsUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for ip netns and iptables (CI runs as root)'
  for (const tool of ['ip', 'iptables', 'curl']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' }) } catch { return `${tool} is not installed (scripts/setup-test-system.sh installs it)` }
  }
  try {
    execFileSync('ip', ['netns', 'add', `hchk${process.pid}`], { stdio: 'pipe' })
    execFileSync('ip', ['netns', 'del', `hchk${process.pid}`], { stdio: 'pipe' })
  } catch (err: any) {
    return `ip netns add failed: ${String(err?.stderr ?? err?.message).trim()}`
  }
  return undefined
}

const sh = async (...args: string[]): Promise<void> => { await run(args[0], args.slice(1)) }
const inNs = async (ns: string, ...args: string[]): Promise<void> => { await run('ip', ['netns', 'exec', ns, ...args]) }

/** Removes namespaces of earlier runs that were killed before their cleanup */
function removeStale (): void {
  let list = ''
  try { list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }) } catch { return }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0]
    const m = /^hn(\d+)-/.exec(name)
    if (m == null) continue
    let alive = true
    try { process.kill(Number(m[1]), 0) } catch { alive = false }
    if (!alive) try { execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' }) } catch { /* gone */ }
  }
}

export async function createNet (): Promise<Net> {
  removeStale()
  const prefix = `hn${process.pid}-`
  const made: string[] = []
  const ns = async (name: string): Promise<string> => {
    const full = `${prefix}${name}`
    await sh('ip', 'netns', 'add', full)
    made.push(full)
    await inNs(full, 'ip', 'link', 'set', 'lo', 'up')
    return full
  }
  const wan = await ns('wan')
  await inNs(wan, 'ip', 'link', 'add', 'br0', 'type', 'bridge')
  await inNs(wan, 'ip', 'link', 'set', 'br0', 'up')
  let port = 0
  /** a veth pair with one end in `a` named `aIf`, the other on the wan bridge */
  const toWan = async (a: string, aIf: string): Promise<void> => {
    const w = `w${port++}`
    // made in the wan namespace, then one end moved: no interface ever appears in the test's own namespace
    await inNs(wan, 'ip', 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', w)
    await inNs(wan, 'ip', 'link', 'set', aIf, 'netns', a)
    await inNs(wan, 'ip', 'link', 'set', w, 'master', 'br0')
    await inNs(wan, 'ip', 'link', 'set', w, 'up')
    await inNs(a, 'ip', 'link', 'set', aIf, 'up')
  }
  return {
    prefix,
    publicHost: async (name, ip) => {
      const host = await ns(name)
      await toWan(host, 'eth0')
      await inNs(host, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0')
      return host
    },
    home: async (name, wanIp, lan, opts = {}) => {
      const router = await ns(`${name}-gw`)
      const home = await ns(name)
      await toWan(router, 'wan0')
      await inNs(router, 'ip', 'addr', 'add', `${wanIp}/24`, 'dev', 'wan0')
      await inNs(router, 'ip', 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0')
      await inNs(router, 'ip', 'link', 'set', 'eth0', 'netns', home)
      await inNs(router, 'ip', 'addr', 'add', `${lan}.1/24`, 'dev', 'lan0')
      await inNs(router, 'ip', 'link', 'set', 'lan0', 'up')
      await inNs(home, 'ip', 'addr', 'add', `${lan}.2/24`, 'dev', 'eth0')
      await inNs(home, 'ip', 'link', 'set', 'eth0', 'up')
      await inNs(home, 'ip', 'route', 'add', 'default', 'via', `${lan}.1`)
      await inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
      // the LAN goes out as the router's wan address; nothing comes in unasked
      await inNs(router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'MASQUERADE', ...(opts.symmetric === true ? ['--random-fully'] : []))
      await inNs(router, 'iptables', '-A', 'FORWARD', '-i', 'wan0', '-o', 'lan0', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT')
      await inNs(router, 'iptables', '-A', 'FORWARD', '-i', 'wan0', '-o', 'lan0', '-j', 'DROP')
      // like most home routers, it does not answer what it did not ask for (no RST), it drops it
      await inNs(router, 'iptables', '-A', 'INPUT', '-i', 'wan0', '-m', 'conntrack', '--ctstate', 'NEW,INVALID', '-j', 'DROP')
      return home
    },
    destroy: async () => {
      for (const n of made.reverse()) {
        try { execFileSync('ip', ['netns', 'del', n], { stdio: 'pipe' }) } catch { /* already gone */ }
      }
      made.length = 0
    }
  }
}

export interface NsDaemon {
  ns: string
  dataDir: string
  proc: ChildProcess
  token: string
  peerId: string
  output: () => string
  /** an HTTP call to the daemon's API, from inside its namespace */
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number, body: any }>
  /** POSTs a file's bytes (`upload`), or writes the answer's body to a file (`output`); returns the status and, for uploads, the parsed answer */
  transfer: (method: string, path: string, files: { upload?: string, output?: string }) => Promise<{ status: number, body: any }>
  /** runs the hearth CLI in the daemon's namespace, against its data folder */
  cli: (args: string[]) => Promise<{ code: number, stdout: string }>
  stop: () => Promise<void>
}

/** Starts a daemon inside `ns` (HTTP on its loopback, libp2p on every interface) and waits until it is ready */
export async function nsDaemon (ns: string, dataDir: string, env: Record<string, string> = {}): Promise<NsDaemon> {
  mkdirSync(dataDir, { recursive: true })
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'daemon'], {
    env: cleanEnv({ HEARTH_DATA: dataDir, HEARTH_HTTP_HOST: '127.0.0.1', HEARTH_HTTP_PORT: '7878', P2P_PORT: '4101', HEARTH_P2P_HOST: '0.0.0.0', DISABLE_MDNS: 'true', ...env }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  proc.stdout!.on('data', d => { out += String(d) })
  proc.stderr!.on('data', d => { out += String(d) })
  const exited = new Promise<void>(resolve => proc.on('exit', () => resolve()))
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> => {
    const token = (() => { try { return readFileSync(join(dataDir, 'api-token'), 'utf8').trim() } catch { return '' } })()
    const args = ['netns', 'exec', ns, 'curl', '-s', '-m', '20', '-X', method, '-H', `authorization: Bearer ${token}`, '-w', '\n%{http_code}']
    if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body))
    const { stdout } = await run('ip', [...args, `http://127.0.0.1:7878${path}`], { maxBuffer: 64 * 1024 * 1024 })
    const at = stdout.lastIndexOf('\n')
    const text = stdout.slice(0, at)
    let parsed: unknown = text
    try { parsed = JSON.parse(text) } catch { /* not JSON */ }
    return { status: Number(stdout.slice(at + 1)), body: parsed }
  }
  const transfer = async (method: string, path: string, files: { upload?: string, output?: string }): Promise<{ status: number, body: any }> => {
    const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim()
    const args = ['netns', 'exec', ns, 'curl', '-s', '-m', '300', '-X', method, '-H', `authorization: Bearer ${token}`, '-w', '\n%{http_code}']
    if (files.upload != null) args.push('-H', 'content-type: application/octet-stream', '--data-binary', `@${files.upload}`)
    if (files.output != null) args.push('-o', files.output)
    const { stdout } = await run('ip', [...args, `http://127.0.0.1:7878${path}`], { maxBuffer: 1024 * 1024 })
    const at = stdout.lastIndexOf('\n')
    let parsed: unknown = stdout.slice(0, at)
    try { parsed = JSON.parse(stdout.slice(0, at)) } catch { /* not JSON */ }
    return { status: Number(stdout.slice(at + 1)), body: parsed }
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (proc.exitCode != null) throw new Error(`daemon in ${ns} exited with ${proc.exitCode}:\n${out}`)
    const ready = await call('GET', '/ready').catch(() => undefined)
    if (ready?.status === 200) break
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`daemon in ${ns} did not become ready:\n${out}`) }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const status = await call('GET', '/p2p/status')
  return {
    ns,
    dataDir,
    proc,
    token: readFileSync(join(dataDir, 'api-token'), 'utf8').trim(),
    peerId: status.body.peer_id,
    output: () => out,
    call,
    transfer,
    cli: async (args) => {
      try {
        const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], { env: cleanEnv({ HEARTH_DATA: dataDir }) })
        return { code: 0, stdout }
      } catch (err: any) {
        return { code: typeof err.code === 'number' ? err.code : 1, stdout: String(err.stdout ?? '') }
      }
    },
    stop: async () => {
      if (proc.exitCode != null || proc.signalCode != null) return
      proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(t)
    }
  }
}
