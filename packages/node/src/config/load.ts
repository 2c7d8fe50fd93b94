import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { ConfigError } from '../errors.js'
import { FILES } from '../constants.js'
import { CLIENT_ENV, CONFIG_OPTION, DATA_OPTION, DEFAULTS, OPTIONS } from './spec.js'
import type { HearthConfig } from './spec.js'
import { recordSources } from './describe.js'
import type { SettingSource } from './describe.js'

export interface ConfigSources {
  /** parsed flags: flag name (without dashes) → string value, or true for boolean flags */
  flags?: Record<string, string | boolean | undefined>
  env?: Record<string, string | undefined>
}

const MAX_CONFIG_FILE_BYTES = 256 * 1024

/** The default data folder: `$XDG_DATA_HOME/hearth`, else `~/.local/share/hearth`. */
export function defaultDataDir (env: Record<string, string | undefined>): string {
  const xdg = env.XDG_DATA_HOME
  return join(xdg != null && isAbsolute(xdg) ? xdg : join(env.HOME ?? homedir(), '.local', 'share'), 'hearth')
}

/**
 * Builds the configuration from flags, then environment, then a config file,
 * then defaults. Any bad value, unknown file key or unknown `HEARTH_*`
 * variable throws a ConfigError naming it.
 */
export function loadConfig (sources: ConfigSources = {}): HearthConfig {
  const flags = sources.flags ?? {}
  const env = sources.env ?? process.env

  const known = new Set([...OPTIONS.map(o => o.env), DATA_OPTION.env, CONFIG_OPTION.env, ...CLIENT_ENV])
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith('HEARTH_') && !known.has(name) && !isServiceLink(name, env[name])) {
      throw new ConfigError(name, 'unknown setting (see `hearth daemon --help`)')
    }
  }

  const configPath = pick(flags[CONFIG_OPTION.flag], `--${CONFIG_OPTION.flag}`, env[CONFIG_OPTION.env], CONFIG_OPTION.env)
  let file: Record<string, unknown> = {}
  let configFile: string | undefined
  if (configPath != null) {
    configFile = resolve(String(configPath.value))
    if (!existsSync(configFile)) throw new ConfigError(configPath.name, `config file ${configFile} does not exist`)
    file = readConfigFile(configFile)
  }

  const dataRaw = pick(flags[DATA_OPTION.flag], `--${DATA_OPTION.flag}`, env[DATA_OPTION.env], DATA_OPTION.env) ??
    (file[DATA_OPTION.file] !== undefined ? { value: file[DATA_OPTION.file], name: `${configFile}: ${DATA_OPTION.file}` } : undefined)
  if (dataRaw != null && (typeof dataRaw.value !== 'string' || dataRaw.value.trim() === '')) {
    throw new ConfigError(dataRaw.name, 'expected a folder path')
  }
  const dataDir = resolve(dataRaw != null ? String(dataRaw.value) : defaultDataDir(env))

  if (configFile == null) {
    const implicit = join(dataDir, FILES.configFile)
    if (existsSync(implicit)) {
      configFile = implicit
      file = readConfigFile(implicit)
    }
  }

  const fileKeys = new Set([...OPTIONS.map(o => o.file), DATA_OPTION.file])
  for (const k of Object.keys(file)) {
    if (!fileKeys.has(k)) throw new ConfigError(`${configFile}: ${k}`, 'unknown setting')
  }

  const config: Record<string, unknown> = { ...DEFAULTS, dataDir, configFile }
  const from: Partial<Record<keyof HearthConfig, SettingSource>> = {
    dataDir: dataRaw == null ? 'default' : dataRaw.name.startsWith('--') ? 'flag' : dataRaw.name === DATA_OPTION.env ? 'env' : 'file'
  }
  for (const o of OPTIONS) {
    const flag = flags[o.flag]
    if (flag !== undefined) {
      const value = o.boolean != null ? (o.boolean.negate ? flag !== true : flag === true) : flag
      config[o.key] = o.parse(value, `--${o.flag}`)
      from[o.key] = 'flag'
    } else if (env[o.env] !== undefined) {
      config[o.key] = o.parse(env[o.env], o.env)
      from[o.key] = 'env'
    } else if (file[o.file] !== undefined) {
      config[o.key] = o.parse(file[o.file], `${configFile}: ${o.file}`)
      from[o.key] = 'file'
    }
  }
  const result = config as unknown as HearthConfig
  recordSources(result, from)
  if (result.bootstrapDns != null && result.p2pPort === 0 && result.enableP2p) {
    throw new ConfigError('HEARTH_BOOTSTRAP_DNS', 'needs a fixed P2P_PORT (not 0): the peers it finds are dialled on that port')
  }
  return result
}

/**
 * Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT=tcp://…` and
 * friends for every Service in the namespace, so a Service named `hearth-api`
 * yields `HEARTH_API_*` variables that are not settings and must not stop the
 * daemon.
 */
export function isServiceLink (name: string, value: string | undefined): boolean {
  if (/_SERVICE_HOST$|_SERVICE_PORT(_[A-Z0-9_]+)?$|_PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?$/.test(name)) return true
  return /_PORT$/.test(name) && /^(tcp|udp|sctp):\/\//.test(value ?? '')
}

function pick (flag: unknown, flagName: string, env: string | undefined, envName: string): { value: unknown, name: string } | undefined {
  if (flag !== undefined) return { value: flag, name: flagName }
  if (env !== undefined) return { value: env, name: envName }
  return undefined
}

function readConfigFile (path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err: any) {
    throw new ConfigError(path, `cannot read config file: ${err.code ?? err.message}`)
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_FILE_BYTES) throw new ConfigError(path, 'config file is larger than 256 KiB')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err: any) {
    throw new ConfigError(path, `config file is not valid JSON: ${err.message}`)
  }
  if (parsed == null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(path, 'config file must hold a JSON object')
  }
  return parsed as Record<string, unknown>
}

/** The WebSocket port the host will listen on. */
export function wsPort (config: HearthConfig): number {
  if (config.p2pWsPort !== undefined) return config.p2pWsPort
  return config.p2pPort === 0 || config.p2pPort === 65535 ? 0 : config.p2pPort + 1
}
