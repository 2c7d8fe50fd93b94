import { chmod, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { loadOrCreateKeyFile } from '@hearth/trust'
import { FILES } from '../../constants.js'
import { peerIdOfKey } from '../../identity.js'
import { dataDirOf } from '../client.js'
import { parse, str } from '../args.js'

export const initHelp = `usage: hearth init [--data <dir>] [--json]

Creates the data folder (mode 0700) and this device's Ed25519 key (mode 0600),
and prints the PeerId derived from it. Running it again changes nothing.

  -d, --data <dir>   data folder (HEARTH_DATA; default $XDG_DATA_HOME/hearth)
      --json         print JSON
  -h, --help         show this help`

export async function init (args: string[]): Promise<number> {
  const { values } = parse(args, { data: { type: 'string', short: 'd' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, false)
  if (values.help === true) { console.log(initHelp); return 0 }
  const dataDir = dataDirOf({ data: str(values.data) })
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await chmod(dataDir, 0o700)
  const keyPath = join(dataDir, FILES.deviceKey)
  const { keyPair, created } = await loadOrCreateKeyFile(keyPath)
  const peerId = peerIdOfKey(keyPair).toString()
  if (values.json === true) {
    console.log(JSON.stringify({ data: dataDir, device_key: keyPath, peer_id: peerId, created }))
  } else {
    console.log(`${created ? 'initialised' : 'already initialised'} ${dataDir}`)
    console.log(`device key: ${keyPath}`)
    console.log(`peer id:    ${peerId}`)
  }
  return 0
}
