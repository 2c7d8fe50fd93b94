import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadOrCreateKeyFile } from '@hearth/trust'
import { FILES } from '../../constants.js'
import { peerIdOfKey } from '../../identity.js'
import { CliError, EXIT, dataDirOf } from '../client.js'
import { parse, str } from '../args.js'

export const initHelp = `usage: hearth init [--join] [--data <dir>] [--json]

Creates the data folder (mode 0700) and this device's Ed25519 key (mode 0600),
and prints the PeerId derived from it. Running it again changes nothing.

The daemon's first start creates a personal agent for the device (so
documents work at once), unless told not to. A device that will join another
device's agent may skip that with --join; \`hearth trust join\` also replaces a
first-start agent as long as nothing was made with it.

  -d, --data <dir>   data folder (HEARTH_DATA; default $XDG_DATA_HOME/hearth)
      --join         this device will join another's agent: write auto_agent=false
                     into the data folder's config.json
      --json         print JSON
  -h, --help         show this help`

export async function init (args: string[]): Promise<number> {
  const { values } = parse(args, { data: { type: 'string', short: 'd' }, join: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, false)
  if (values.help === true) { console.log(initHelp); return 0 }
  const dataDir = dataDirOf({ data: str(values.data) })
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await chmod(dataDir, 0o700)
  const keyPath = join(dataDir, FILES.deviceKey)
  const { keyPair, created } = await loadOrCreateKeyFile(keyPath)
  const peerId = peerIdOfKey(keyPair).toString()
  const joining = values.join === true
  const configPath = join(dataDir, FILES.configFile)
  if (joining) await writeSetting(configPath, 'auto_agent', false)
  // what the file says, not only what this run wrote (an earlier --join stays in force)
  const autoAgent = joining ? false : (await readSettings(configPath)).auto_agent !== false
  const hasAgent = existsSync(join(dataDir, FILES.agentKey))
  if (values.json === true) {
    console.log(JSON.stringify({ data: dataDir, device_key: keyPath, peer_id: peerId, created, auto_agent: autoAgent }))
  } else {
    console.log(`${created ? 'initialised' : 'already initialised'} ${dataDir}`)
    console.log(`device key: ${keyPath}`)
    console.log(`peer id:    ${peerId}`)
    if (joining) console.log(`the daemon will wait for \`hearth trust join <invitation>\`${hasAgent ? ' (this device already has its own agent: join replaces it while nothing was made with it)' : ''}`)
  }
  return 0
}

/** Sets one key of a JSON config file, keeping the others (written aside, then renamed over) */
async function writeSetting (path: string, key: string, value: unknown): Promise<void> {
  const settings = await readSettings(path)
  settings[key] = value
  await writeFile(`${path}.tmp`, JSON.stringify(settings, null, 2) + '\n', { mode: 0o600 })
  await rename(`${path}.tmp`, path)
}

/** A JSON config file's settings; none when it does not exist */
async function readSettings (path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, 'utf8'))
  } catch (err: any) {
    if (err?.code === 'ENOENT') return {}
    throw new CliError('ERR_CONFIG', `cannot read ${path}: ${err?.message ?? err}`, EXIT.usage)
  }
}
