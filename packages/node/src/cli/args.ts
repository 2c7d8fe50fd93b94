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
    const { values, positionals } = parseArgs({ args: joinDashValues(args, options), allowPositionals, options, strict: true })
    return { values: values as Parsed['values'], positionals }
  } catch (err: any) {
    throw new CliError('ERR_USAGE', `${err.message} (see --help)`, EXIT.usage)
  }
}

export function str (v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined
}

/**
 * `--range -100` as `--range=-100`: node's parser takes a value that starts
 * with a dash for an option, so a string option's value that looks like a
 * negative number is joined to it first.
 */
function joinDashValues (args: string[], options: Options): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--') { out.push(...args.slice(i)); break }
    const next = args[i + 1]
    const name = a.startsWith('--') ? a.slice(2) : a.length === 2 && a.startsWith('-') ? Object.keys(options).find(k => options[k].short === a[1]) : undefined
    if (name != null && options[name]?.type === 'string' && next != null && /^-\d/.test(next)) {
      out.push(`--${name}=${next}`)
      i++
    } else {
      out.push(a)
    }
  }
  return out
}
