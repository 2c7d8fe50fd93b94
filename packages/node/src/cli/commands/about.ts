import { loadConfig } from '../../config/load.js'
import { describeConfig } from '../../config/describe.js'
import type { ConfigView } from '../../config/describe.js'
import { VERSION } from '../../version.js'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'

export const versionHelp = `usage: hearth version [options]

Prints this CLI's version and, when one answers, the daemon's.

${CLIENT_HELP}`

export async function version (args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS, false)
  if (values.help === true) { console.log(versionHelp); return 0 }
  let daemon: string | null = null
  try {
    const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
    daemon = (await client.call<{ version: string }>('GET', '/health')).version
  } catch (err) {
    if (!(err instanceof CliError) || err.exitCode !== EXIT.noDaemon) throw err
  }
  if (values.json === true) console.log(JSON.stringify({ cli: VERSION, daemon, node: process.version }))
  else console.log(`cli     ${VERSION}\ndaemon  ${daemon ?? '(not running)'}\nnode    ${process.version}`)
  return 0
}

export const configHelp = `usage: hearth config [options]

Prints the settings the daemon runs with: each one's config file key, value
and where it came from (flag, env, file or default); the API token shows only
as "(set)". Needs an admin token. With no daemon running, prints what a daemon
started now with this environment and data folder would use.

${CLIENT_HELP}`

export async function config (args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS, false)
  if (values.help === true) { console.log(configHelp); return 0 }
  let view: ConfigView & { running: boolean }
  try {
    const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
    view = { ...await client.call<ConfigView>('GET', '/config'), running: true }
  } catch (err) {
    if (!(err instanceof CliError) || err.exitCode !== EXIT.noDaemon) throw err
    const data = str(values.data)
    view = { ...describeConfig(loadConfig({ flags: data != null ? { data } : {} })), running: false }
  }
  if (values.json === true) { console.log(JSON.stringify(view, null, 2)); return 0 }
  if (!view.running) console.log('# no daemon running: what one started now here would use')
  console.log(`# config file: ${view.config_file ?? 'none'}`)
  const width = Math.max(...view.settings.map(s => s.key.length))
  for (const s of view.settings) console.log(`${s.key.padEnd(width)}  ${JSON.stringify(s.value)}${s.source === 'default' ? '' : `  (${s.source})`}`)
  return 0
}
