#!/usr/bin/env node
/* global fetch, AbortController */
// `pnpm demo [--size 20MiB] [--timeout 180]`: Hearth's main job on one machine.
//
// Three real daemons on loopback — Ana's laptop, the Smith family's home
// server and Grandma's rack, each with failure-domain labels — each acting for
// its own agent. Through the `hearth` CLI (the same HTTP API a person uses),
// Ana relates to the family and to Grandma, both grant her `reciprocal`
// storage, and she adds a 20 MiB file pinned `reciprocal` on her laptop. The
// demo then prints, as it happens, the copies being fetched and proven
// (holding proofs on random blocks), and exits 0 once the target (two copies
// in two failure domains) is met, 1 on timeout. Its daemons and temp folder
// are removed however it ends, Ctrl-C included.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../packages/node/dist/bundle/hearth.mjs', import.meta.url))
const MiB = 1024 * 1024

const CAST = [
  { name: 'home-server', who: 'the Smith family\'s home server', labels: 'region=eu,cluster=smith-home,rack=closet' },
  { name: 'laptop', who: 'Ana\'s laptop', labels: 'region=eu,cluster=ana,rack=laptop' },
  { name: 'grandma-rack', who: 'Grandma\'s rack', labels: 'region=eu,cluster=grandma,rack=basement' }
]

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function hermeticEnv (extra) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEARTH_') && !['ENABLE_P2P', 'P2P_PORT', 'DISABLE_MDNS'].includes(k)) env[k] = v
  return { ...env, ...extra }
}

/**
 * Runs the demo; resolves with the exit code. `signal` aborts it (cleanup
 * still runs). `print` receives each line meant for a person.
 */
export async function runDemo ({ sizeBytes = 20 * MiB, timeoutMs = 180_000, print = line => console.log(line), signal, onStarted } = {}) {
  const work = await mkdtemp(join(tmpdir(), 'hearth-demo-'))
  const daemons = new Map()
  const t0 = Date.now()
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`
  const say = line => print(`${elapsed()}  ${line}`)
  const check = () => { if (signal?.aborted === true) throw Object.assign(new Error('interrupted'), { code: 'ERR_INTERRUPTED' }) }
  try {
    say(`working in ${work}`)
    // 1. three daemons; the laptop and the rack know the home server's address
    const [home, ...others] = CAST
    daemons.set(home.name, await startDaemon(join(work, home.name), { HEARTH_LABELS: home.labels }))
    const bootstrap = (await get(daemons.get(home.name), '/p2p/status')).addresses[0]
    const started = await Promise.all(others.map(async c => await startDaemon(join(work, c.name), { HEARTH_LABELS: c.labels, HEARTH_BOOTSTRAP: bootstrap })))
    others.forEach((c, i) => daemons.set(c.name, started[i]))
    for (const c of CAST) say(`started ${c.who.padEnd(30)} pid ${String(daemons.get(c.name).proc.pid).padEnd(7)} labels ${c.labels}`)
    check()
    onStarted?.({ work, pids: [...daemons.values()].map(d => d.proc.pid) })

    // 2. an agent on each, then relationships and grants, all through the CLI
    const agents = {}
    for (const c of CAST) {
      const self = JSON.parse((await cli(daemons.get(c.name), ['trust', 'init', '--json'], say, c.name)).stdout)
      agents[c.name] = self.agent_id
      check()
    }
    say('waiting for the three daemons to learn each other\'s agents…')
    for (const d of daemons.values()) {
      for (const id of Object.values(agents)) await until(async () => (await fetch(`${d.url}/trust/agents/${id}`)).status === 200, 30_000, signal)
    }
    await cli(daemons.get('laptop'), ['trust', 'relate', agents['home-server'], '--as', 'family'], say, 'laptop')
    await cli(daemons.get('laptop'), ['trust', 'relate', agents['grandma-rack'], '--as', 'family'], say, 'laptop')
    for (const holder of ['home-server', 'grandma-rack']) {
      await cli(daemons.get(holder), ['trust', 'relate', agents.laptop, '--as', 'family'], say, holder)
      await cli(daemons.get(holder), ['trust', 'grant', agents.laptop, '--layer', 'reciprocal', '--quota', '1GiB'], say, holder)
      check()
    }

    // 3. the file, pinned reciprocal on the laptop
    const file = join(work, 'holiday-photos.tar')
    await writeRandom(file, sizeBytes)
    const added = JSON.parse((await cli(daemons.get('laptop'), ['add', 'holiday-photos.tar', '--layer', 'reciprocal', '--json'], say, 'laptop', work)).stdout)
    const cid = added.cid
    say(`added ${(sizeBytes / MiB).toFixed(1)} MiB as ${cid}`)
    say('waiting for two copies in two failure domains, each proven by a holding proof…')

    // 4. progress, as the holders fetch and prove their copies
    const names = new Map()
    for (const [name, d] of daemons) names.set((await get(d, '/trust/self')).device_id, name)
    const seen = new Set()
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      check()
      for (const name of ['home-server', 'grandma-rack']) {
        const st = await get(daemons.get(name), '/replication/status').catch(() => undefined)
        const r = st?.roots.find(x => x.cid === cid)
        if (r != null && !seen.has(`${name} ${r.state}`)) {
          seen.add(`${name} ${r.state}`)
          if (r.state === 'fetching') say(`${name}: fetching the file from the laptop…`)
          if (r.state === 'held') say(`${name}: holds a copy`)
          if (r.state === 'failed' || r.state === 'over-quota') say(`${name}: ${r.state}${r.error != null ? ` (${r.error})` : ''}`)
        }
      }
      const own = (await get(daemons.get('laptop'), '/replication/status').catch(() => undefined))?.own.find(x => x.cid === cid)
      for (const h of own?.holders ?? []) {
        if (h.proof?.result === 'ok' && !seen.has(`proof ${h.device}`)) {
          seen.add(`proof ${h.device}`)
          say(`laptop: ${names.get(h.device) ?? h.device} proved its copy (a random block, checked by the laptop) — domain ${h.domain}`)
        }
      }
      const proven = (own?.holders ?? []).filter(h => h.confirmed && h.proof?.result === 'ok')
      if (own?.state === 'ok' && proven.length >= own.target && new Set(proven.map(h => h.domain)).size >= own.target) {
        say(`target met: ${proven.length} of ${own.target} copies confirmed, on ${proven.map(h => names.get(h.device)).join(' and ')}`)
        return 0
      }
      await sleep(250)
    }
    say(`timed out after ${timeoutMs / 1000} s; daemon logs are in ${work} (kept no longer than this run)`)
    for (const name of ['home-server', 'grandma-rack']) print(JSON.stringify((await get(daemons.get(name), '/replication/status').catch(() => ({}))).roots ?? null))
    return 1
  } catch (err) {
    if (err?.code === 'ERR_INTERRUPTED') { say('interrupted'); return 130 }
    say(`failed: ${err?.message ?? err}`)
    return 1
  } finally {
    await Promise.all([...daemons.values()].map(stopDaemon))
    await rm(work, { recursive: true, force: true })
    say('stopped the daemons and removed the temp folder')
  }
}

async function startDaemon (dataDir, extra) {
  const env = hermeticEnv({
    HEARTH_DATA: dataDir,
    HEARTH_HTTP_PORT: '0',
    P2P_PORT: '0',
    HEARTH_P2P_HOST: '127.0.0.1',
    DISABLE_MDNS: 'true',
    HEARTH_REPLICATION_INTERVAL_MS: '1000',
    HEARTH_PROOF_INTERVAL_MS: '2000',
    HEARTH_REPLICATION_TARGETS: 'reciprocal=2',
    HEARTH_LOG_LEVEL: 'info',
    ...extra
  })
  const log = createWriteStream(join(dataDir + '.log'))
  const proc = spawn(process.execPath, [BIN, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout.pipe(log)
  proc.stderr.pipe(log)
  const exited = new Promise(resolve => proc.on('exit', resolve))
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (proc.exitCode != null) throw new Error(`a daemon exited at start (${proc.exitCode}); see ${dataDir}.log`)
    try {
      const info = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
      if (info.pid === proc.pid && (await fetch(`${info.url}/ready`)).status === 200) return { proc, exited, url: info.url, env }
    } catch { /* not yet */ }
    await sleep(50)
  }
  proc.kill('SIGKILL')
  throw new Error(`a daemon did not become ready; see ${dataDir}.log`)
}

async function stopDaemon (d) {
  if (d.proc.exitCode != null || d.proc.signalCode != null) return
  d.proc.kill('SIGTERM')
  const timer = setTimeout(() => d.proc.kill('SIGKILL'), 10_000)
  await d.exited
  clearTimeout(timer)
}

async function get (d, path) {
  const res = await fetch(d.url + path)
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`)
  return await res.json()
}

/** Runs `hearth <args>` against one daemon, showing the command as a person would type it. */
async function cli (d, args, say, who, cwd) {
  say(`${who}$ hearth ${args.filter(a => a !== '--json').map(a => a.length > 24 ? `${a.slice(0, 12)}…` : a).join(' ')}`)
  const child = spawn(process.execPath, [BIN, ...args], { env: d.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', x => { stdout += x })
  child.stderr.on('data', x => { stderr += x })
  const code = await new Promise(resolve => child.on('exit', resolve))
  if (code !== 0) throw new Error(`hearth ${args[0]} ${args[1] ?? ''} exited ${code}: ${stderr.trim()}`)
  return { stdout }
}

async function until (check, timeoutMs, signal) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (signal?.aborted === true) return
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error('the daemons did not learn each other\'s agents in time')
}

async function writeRandom (path, bytes) {
  const out = createWriteStream(path)
  for (let left = bytes; left > 0; left -= MiB) {
    if (!out.write(randomBytes(Math.min(MiB, left)))) await new Promise(resolve => out.once('drain', resolve))
  }
  await new Promise((resolve, reject) => out.end(err => err != null ? reject(err) : resolve()))
}

function parseSize (s) {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(s ?? '')
  if (m == null) throw new Error(`not a size: ${s}`)
  return Math.round(Number(m[1]) * { b: 1, kib: 1024, mib: MiB, gib: 1024 * MiB }[(m[2] ?? 'B').toLowerCase()])
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2)
  const opt = name => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : undefined }
  if (args.includes('--help')) {
    console.log('usage: pnpm demo [--size 20MiB] [--timeout <seconds>]')
    process.exit(0)
  }
  const abort = new AbortController()
  let signals = 0
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      // the first signal stops the demo and cleans up; a second one gives up on that
      if (++signals > 1) process.exit(130)
      abort.abort()
    })
  }
  const code = await runDemo({ sizeBytes: parseSize(opt('size') ?? '20MiB'), timeoutMs: Number(opt('timeout') ?? 180) * 1000, signal: abort.signal })
  process.exit(code)
}
