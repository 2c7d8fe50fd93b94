// Helpers for the deployment tests (docker/): paths, a Dockerfile reader, and
// the daemon's own config loader applied to the environment a deployment sets.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CONFIG_OPTIONS, loadConfig } from '../src/index.js'
import type { HearthConfig } from '../src/index.js'

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
export const NODE_PKG = join(ROOT, 'packages', 'node')
export const DOCKER = join(ROOT, 'docker')

/** True once the daemon knows HEARTH_BOOTSTRAP_DNS (issue 7, item 3). */
export const KNOWS_BOOTSTRAP_DNS = CONFIG_OPTIONS.some(o => o.env === 'HEARTH_BOOTSTRAP_DNS')

/**
 * Loads the daemon's configuration from exactly `env`, as the daemon would
 * at start (an unknown HEARTH_* name or a bad value throws ConfigError).
 * Until the daemon knows HEARTH_BOOTSTRAP_DNS, that one variable is left out
 * and reported through `skipped`.
 */
export function configFor (env: Record<string, string>, skipped: (name: string) => void = () => {}): HearthConfig {
  const e = { ...env }
  if (!KNOWS_BOOTSTRAP_DNS && 'HEARTH_BOOTSTRAP_DNS' in e) {
    delete e.HEARTH_BOOTSTRAP_DNS
    skipped('HEARTH_BOOTSTRAP_DNS')
  }
  return loadConfig({ env: e })
}

export interface Instruction {
  /** upper-case keyword: FROM, RUN, ENV ... */
  cmd: string
  /** the rest of the instruction, continuation lines joined */
  args: string
  line: number
}

export interface Stage {
  image: string
  name: string | undefined
  instructions: Instruction[]
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults */
  globalArgs: Record<string, string>
  stages: Stage[]
}

/** Reads a Dockerfile into stages (no heredocs; enough for ours). */
export function parseDockerfile (text: string): Dockerfile {
  const instructions: Instruction[] = []
  let pending: { text: string, line: number } | undefined
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '')
    if (/^\s*#/.test(line) || (pending == null && line.trim() === '')) return
    const continued = /\\\s*$/.test(line)
    const part = continued ? line.replace(/\\\s*$/, '') : line
    pending = pending == null ? { text: part, line: i + 1 } : { text: `${pending.text} ${part.trim()}`, line: pending.line }
    if (!continued) {
      const m = /^\s*(\S+)\s*(.*)$/.exec(pending.text)
      if (m != null) instructions.push({ cmd: m[1].toUpperCase(), args: m[2].trim(), line: pending.line })
      pending = undefined
    }
  })
  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.cmd === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)
      if (m == null) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`)
      const image = m[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => globalArgs[a ?? b] ?? '')
      stages.push({ image, name: m[2], instructions: [] })
    } else if (stages.length === 0) {
      if (ins.cmd === 'ARG') {
        const [k, v = ''] = ins.args.split('=')
        globalArgs[k] = v
      }
    } else {
      stages[stages.length - 1].instructions.push(ins)
    }
  }
  return { globalArgs, stages }
}

/** Splits on whitespace outside quotes; quotes are removed; a backslash inside double quotes escapes the next character. */
function words (s: string): string[] {
  const out: string[] = []
  let cur: string | undefined
  let quote: string | undefined
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (quote == null && /\s/.test(c)) {
      if (cur != null) out.push(cur)
      cur = undefined
    } else if (quote == null && (c === '"' || c === "'")) {
      quote = c
      cur ??= ''
    } else if (c === quote) {
      quote = undefined
    } else if (c === '\\' && quote === '"' && i + 1 < s.length) {
      cur = (cur ?? '') + s[++i]
    } else {
      cur = (cur ?? '') + c
    }
  }
  if (cur != null) out.push(cur)
  return out
}

/** The variables a stage's ENV instructions set (both `K=V ...` and `K V` forms). */
export function stageEnv (stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const ins of stage.instructions.filter(i => i.cmd === 'ENV')) {
    const parts = words(ins.args)
    if (parts.length > 0 && !parts[0].includes('=')) {
      env[parts[0]] = ins.args.slice(ins.args.indexOf(parts[0]) + parts[0].length).trim()
      continue
    }
    for (const p of parts) {
      const eq = p.indexOf('=')
      env[p.slice(0, eq)] = p.slice(eq + 1)
    }
  }
  return env
}

/** The JSON (exec) form of CMD, ENTRYPOINT or HEALTHCHECK ... CMD; undefined for the shell form. */
export function execForm (args: string): string[] | undefined {
  const json = args.slice(args.indexOf('['))
  if (!args.includes('[')) return undefined
  const parsed: unknown = JSON.parse(json)
  return Array.isArray(parsed) && parsed.every(x => typeof x === 'string') ? parsed : undefined
}

/** Parses a systemd unit into section → key → values (repeated keys accumulate). */
export function parseUnit (text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {}
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const s = /^\[(.+)\]$/.exec(line)
    if (s != null) {
      section = s[1]
      out[section] ??= {}
      continue
    }
    const eq = line.indexOf('=')
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    out[section][key] ??= []
    out[section][key].push(value)
  }
  return out
}

/** systemd time span in seconds: `30`, `30s`, `1min 30s`, `2m`, `500ms`. */
export function timeSpanSeconds (value: string): number {
  const units: Record<string, number> = { '': 1, s: 1, sec: 1, second: 1, seconds: 1, ms: 0.001, msec: 0.001, m: 60, min: 60, minute: 60, minutes: 60, h: 3600, hr: 3600, hour: 3600, hours: 3600 }
  let total = 0
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)/g)) {
    const unit = units[m[2]]
    if (unit == null) throw new Error(`unknown time unit in ${value}`)
    total += Number(m[1]) * unit
  }
  return total
}
