import { loadConfig } from '../../config/load.js'
import { CONFIG_OPTION, DATA_OPTION, OPTIONS } from '../../config/spec.js'
import { startDaemon, handleSignals } from '../../daemon.js'
import { createLogger } from '../../logger.js'
import { parse } from '../args.js'
import type { Options } from '../args.js'

export function daemonOptions (): Options {
  const options: Options = {
    [DATA_OPTION.flag]: { type: 'string', short: 'd' },
    [CONFIG_OPTION.flag]: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' }
  }
  for (const o of OPTIONS) options[o.flag] = { type: o.boolean != null ? 'boolean' : 'string' }
  return options
}

export function daemonHelp (): string {
  const rows: Array<[string, string, string]> = [
    [`-d, --${DATA_OPTION.flag} <dir>`, DATA_OPTION.env, `${DATA_OPTION.description} [${DATA_OPTION.default}]`],
    [`-c, --${CONFIG_OPTION.flag} <file>`, CONFIG_OPTION.env, `${CONFIG_OPTION.description} [${CONFIG_OPTION.default}]`],
    ...OPTIONS.map((o): [string, string, string] => [
      `    --${o.flag}${o.boolean != null ? '' : ' <value>'}`, o.env, `${o.description} [${o.default}]`
    ])
  ]
  const w0 = Math.max(...rows.map(r => r[0].length))
  const w1 = Math.max(...rows.map(r => r[1].length))
  return `usage: hearth daemon [options]

Runs the Hearth daemon in the foreground until SIGTERM or SIGINT.
Each setting comes from its flag, else its environment variable, else the
JSON config file (keys in snake_case, e.g. "p2p_port"), else its default.

${rows.map(r => `  ${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`).join('\n')}
  -h, --help`
}

export async function daemon (args: string[]): Promise<number> {
  const { values } = parse(args, daemonOptions(), false)
  if (values.help === true) {
    console.log(daemonHelp())
    return 0
  }
  const config = loadConfig({ flags: values, env: process.env })
  const logger = createLogger({ level: config.logLevel })
  const log = logger.forComponent('hearth:daemon')
  process.on('unhandledRejection', (reason: any) => {
    log.error({ err: reason?.message ?? String(reason) }, 'unhandled promise rejection')
  })
  const running = await startDaemon(config, logger)
  handleSignals(running, log, config.shutdownTimeoutMs, code => {
    logger.root.flush()
    process.exit(code)
  })
  // keep running until a signal arrives
  return await new Promise<number>(() => {})
}
