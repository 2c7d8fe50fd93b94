import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HEARTH_BIN as BIN } from '../tools.js'
import { spawnNode } from './spawn.js'
import type { Starter } from './spawn.js'


/**
 * `hearth daemon` with its defaults but free ports, mDNS off (other
 * benchmarks may run beside it) and logs at warn. `fresh` starts from an
 * empty data folder (first start makes the device key); otherwise the same
 * folder is reused, which is what a reboot looks like.
 */
export async function hearthDaemon (opts: { fresh: boolean, p2p: boolean }): Promise<Starter & { dispose: () => Promise<void> }> {
  const shared = await mkdtemp(join(tmpdir(), 'hearth-bench-startup-'))
  let current = shared
  return {
    name: `hearth daemon (${opts.fresh ? 'first start' : 'restart'}${opts.p2p ? '' : ', p2p off'})`,
    start: async () => {
      current = opts.fresh ? await mkdtemp(join(tmpdir(), 'hearth-bench-startup-')) : shared
      const dataDir = current
      const proc = spawnNode([BIN, 'daemon'], {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        HEARTH_DATA: dataDir,
        HEARTH_HTTP_PORT: '0',
        P2P_PORT: '0',
        HEARTH_P2P_HOST: '127.0.0.1',
        DISABLE_MDNS: 'true',
        ENABLE_P2P: String(opts.p2p),
        HEARTH_LOG_LEVEL: 'warn'
      })
      proc.stdout?.resume()
      const readyUrl = async (): Promise<string | undefined> => {
        try {
          const info = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
          return info.pid === proc.pid ? `${info.url}/ready` : undefined
        } catch {
          return undefined
        }
      }
      return { proc, readyUrl }
    },
    cleanup: async () => {
      if (opts.fresh) await rm(current, { recursive: true, force: true })
    },
    dispose: async () => { await rm(shared, { recursive: true, force: true }) }
  }
}
