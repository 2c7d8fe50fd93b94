import { ConfigError, DaemonAlreadyRunningError, DataDirError, P2pPortInUseError } from '../errors.js'
import { VERSION } from '../version.js'
import { CliError, EXIT } from './client.js'

type Command = (args: string[]) => Promise<number>

// Commands load lazily: `hearth status` should not pay for importing libp2p.
const COMMANDS: Record<string, { run: Command, summary: string }> = {
  init: { run: async a => await (await import('./commands/init.js')).init(a), summary: 'create the data folder and this device\'s key' },
  daemon: { run: async a => await (await import('./commands/daemon.js')).daemon(a), summary: 'run the daemon in the foreground' },
  id: { run: async a => await (await import('./commands/id.js')).id(a), summary: 'print this device\'s PeerId and addresses' },
  status: { run: async a => await (await import('./commands/status.js')).status(a), summary: 'is the daemon alive and ready; its peers and bootstrap state' },
  peers: { run: async a => await (await import('./commands/peers.js')).peers(a), summary: 'list, connect to or disconnect from peers' },
  add: { run: async a => await (await import('./commands/add.js')).add(a), summary: 'add a file or stdin as a blob; prints its CID' },
  cat: { run: async a => await (await import('./commands/cat.js')).cat(a), summary: 'write a blob (or a byte range of it) to stdout' },
  pin: { run: async a => await (await import('./commands/pin.js')).pin(a), summary: 'pin add | ls | rm: keep blobs in a storage layer' },
  doc: { run: async a => await (await import('./commands/doc.js')).doc(a), summary: 'new | ls | show | patch | acl | watch | export: Automerge documents' },
  storage: { run: async a => await (await import('./commands/storage.js')).storage(a), summary: 'use and quota per storage layer, and the disk\'s free space' },
  token: { run: async a => await (await import('./commands/token.js')).token(a), summary: 'token create | ls | revoke: scoped API tokens (read, write, admin) for doorways and apps' },
  gc: { run: async a => await (await import('./commands/storage.js')).gc(a), summary: 'collect now: evict the cache, delete unreferenced blocks, give space back (works on a full disk)' },
  trust: { run: async a => await (await import('./commands/trust.js')).trust(a), summary: 'init | invite | join | relate | grant | revoke | show: agents, devices, relationships' },
  config: { run: async a => await (await import('./commands/about.js')).config(a), summary: 'the settings the daemon runs with and where each came from (token redacted)' },
  version: { run: async a => await (await import('./commands/about.js')).version(a), summary: 'this CLI\'s and the daemon\'s versions' },
  replication: { run: async a => await (await import('./commands/replication.js')).replication(a), summary: 'what this node holds for the agents its agent grants storage to' }
}

export const usage = `usage: hearth <command> [options]

Hearth is a local-first peer-to-peer storage daemon.

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

Run \`hearth <command> --help\` for a command's options.
Exit codes: 0 ok, 1 failed, 2 bad usage or configuration, 3 no daemon running.`

/** Runs the CLI and returns its exit code; errors become one readable line. */
export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command == null || command === '--help' || command === '-h' || command === 'help') {
    console.log(usage)
    return command == null ? EXIT.usage : EXIT.ok
  }
  if (command === '--version' || command === '-v') {
    console.log(VERSION)
    return EXIT.ok
  }
  const entry = COMMANDS[command]
  if (entry == null) {
    console.error(`hearth: unknown command "${command}"\n\n${usage}`)
    return EXIT.usage
  }
  try {
    return await entry.run(rest)
  } catch (err: any) {
    const f = describeFailure(err)
    console.error(`hearth: ${f.message}`)
    // with --json a script reads the failure from standard output too
    if (rest.includes('--json') && !rest.slice(0, rest.indexOf('--json')).includes('--')) {
      console.log(JSON.stringify({ error: f.code, message: f.message, exit_code: f.exitCode }))
    }
    return f.exitCode
  }
}

/** An error as one line, a stable code and an exit code */
function describeFailure (err: any): { code: string, message: string, exitCode: number } {
  if (err instanceof ConfigError) return { code: err.code, message: `invalid configuration: ${err.message}`, exitCode: EXIT.usage }
  if (err instanceof CliError) return { code: err.code, message: err.message, exitCode: err.exitCode }
  if (err instanceof DaemonAlreadyRunningError || err instanceof DataDirError || err instanceof P2pPortInUseError) {
    return { code: err.code, message: err.message, exitCode: EXIT.error }
  }
  if (err?.code === 'EADDRINUSE') {
    return { code: 'ERR_ADDRESS_IN_USE', message: `address in use: ${err.address ?? ''}:${err.port ?? ''} (another daemon, or pick another port)`, exitCode: EXIT.error }
  }
  if (typeof err?.code === 'string' && typeof err?.syscall === 'string') {
    // ENOENT, EACCES and friends on a path the user named: the message says which
    return { code: err.code, message: err.message, exitCode: EXIT.error }
  }
  return { code: 'ERR_INTERNAL', message: String(err?.stack ?? err), exitCode: EXIT.error }
}
