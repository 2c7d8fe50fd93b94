import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { CliError, EXIT } from './client.js'

export type Options = NonNullable<ParseArgsConfig['options']>

/** Options every command that talks to the daemon takes. */
export const CLIENT_OPTIONS: Options = {
  data: { type: 'string', short: 'd' },
  api: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
}

export const CLIENT_HELP = `  -d, --data <dir>    data folder of the daemon (HEARTH_DATA)
      --api <url>     daemon URL (HEARTH_API_URL; default: from <data>/api.json)
      --token <t>     bearer token (HEARTH_API_TOKEN; default: <data>/api-token)
      --json          print the raw JSON answer
  -h, --help          show this help`

export interface Parsed {
  values: Record<string, string | boolean | undefined>
  positionals: string[]
}

/** Strict parsing: an unknown flag is a usage error (exit 2) that names it. */
export function parse (args: string[], options: Options, allowPositionals = true): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals, strict: true })
    return { values: values as Parsed['values'], positionals }
  } catch (err: any) {
    throw new CliError('ERR_USAGE', `${err.message} (see --help)`, EXIT.usage)
  }
}

export function str (v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined
}
