import { join } from 'node:path'
import { readKeyFile } from '@hearth/trust'
import { FILES } from '../../constants.js'
import { peerIdOfKey } from '../../identity.js'
import type { P2PStatus } from '../../node.js'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient, dataDirOf } from '../client.js'

export const idHelp = `usage: hearth id [options]

Prints this device's PeerId and, when the daemon runs, its listen addresses.
Without a running daemon the PeerId is read from the device key.

${CLIENT_HELP}`

export async function id (args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS, false)
  if (values.help === true) { console.log(idHelp); return 0 }
  const opts = { data: str(values.data), api: str(values.api), token: str(values.token) }
  let status: P2PStatus | undefined
  try {
    status = await new HearthClient(opts).call<P2PStatus>('GET', '/p2p/status')
  } catch (err) {
    if (!(err instanceof CliError) || err.exitCode !== EXIT.noDaemon) throw err
  }
  if (status != null) {
    if (values.json === true) console.log(JSON.stringify({ peer_id: status.peer_id, addresses: status.addresses, running: true }))
    else {
      console.log(status.peer_id)
      for (const a of status.addresses) console.log(`  ${a}`)
    }
    return 0
  }
  const keyPath = join(dataDirOf(opts), FILES.deviceKey)
  let peerId: string
  try {
    const pair = await readKeyFile(keyPath)
    peerId = peerIdOfKey(pair).toString()
  } catch (err: any) {
    if (err?.code === 'ENOENT') throw new CliError('ERR_NO_IDENTITY', `no device key at ${keyPath}: run \`hearth init\` or \`hearth daemon\` first`)
    throw err
  }
  if (values.json === true) console.log(JSON.stringify({ peer_id: peerId, addresses: [], running: false }))
  else console.log(`${peerId}\n  (daemon not running)`)
  return 0
}
