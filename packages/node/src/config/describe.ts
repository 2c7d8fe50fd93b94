import { DATA_OPTION, OPTIONS } from './spec.js'
import type { HearthConfig } from './spec.js'

export type SettingSource = 'flag' | 'env' | 'file' | 'default'

/** Where each setting of a loaded configuration came from (set by loadConfig) */
const SOURCES = new WeakMap<HearthConfig, Partial<Record<keyof HearthConfig, SettingSource>>>()

export function recordSources (config: HearthConfig, sources: Partial<Record<keyof HearthConfig, SettingSource>>): void {
  SOURCES.set(config, sources)
}

/** Settings whose values are never shown, only whether they are set */
const SECRET: ReadonlySet<keyof HearthConfig> = new Set(['apiToken'])

export interface SettingView {
  /** the config file key */
  key: string
  env: string
  flag: string
  /** the effective value, as the config file would spell it; secrets: "(set)" or null */
  value: unknown
  source: SettingSource
}

export interface ConfigView {
  config_file: string | null
  settings: SettingView[]
}

/** The effective settings, one row per setting, secrets redacted. */
export function describeConfig (config: HearthConfig): ConfigView {
  const sources = SOURCES.get(config) ?? {}
  const rows: SettingView[] = [{ key: DATA_OPTION.file, env: DATA_OPTION.env, flag: `--${DATA_OPTION.flag}`, value: config.dataDir, source: sources.dataDir ?? 'default' }]
  for (const o of OPTIONS) {
    const raw = config[o.key]
    const value = SECRET.has(o.key) ? (raw == null ? null : '(set)') : raw ?? null
    rows.push({ key: o.file, env: o.env, flag: `--${o.flag}`, value, source: sources[o.key] ?? 'default' })
  }
  return { config_file: config.configFile ?? null, settings: rows }
}
