import { PIN_LAYERS } from '@hearth/blobstore'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'
import { formatBytes } from '../progress.js'

export const pinHelp = `usage: hearth pin add <cid> --layer <layer> [--owner <agent>]
       hearth pin ls [--layer <layer>] [--cid <cid>] [--owner <agent>]
       hearth pin rm <cid> [--layer <layer>] [--owner <agent>]

Pins keep a blob in a storage layer (${PIN_LAYERS.join(', ')}) under that
layer's quota. A blob left without pins joins the LRU cache.

${CLIENT_HELP}`

interface PinView { cid: string, layer: string, owner: string | null, size: number, created_at: string }

export async function pin (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...CLIENT_OPTIONS, layer: { type: 'string' }, owner: { type: 'string' }, cid: { type: 'string' } })
  if (values.help === true) { console.log(pinHelp); return 0 }
  const [sub, cid, ...rest] = positionals
  if (rest.length > 0) throw new CliError('ERR_USAGE', `unexpected argument: ${rest[0]} (see --help)`, EXIT.usage)
  const layer = str(values.layer)
  const owner = str(values.owner)
  if (layer != null && !(PIN_LAYERS as readonly string[]).includes(layer)) throw new CliError('ERR_USAGE', `--layer must be one of ${PIN_LAYERS.join(', ')}`, EXIT.usage)
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const query = (q: Record<string, string | undefined>): string => {
    const p = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => e[1] != null))
    return p.size > 0 ? `?${p.toString()}` : ''
  }
  switch (sub) {
    case 'add': {
      if (cid == null || layer == null) throw new CliError('ERR_USAGE', 'pin add needs a CID and --layer (see --help)', EXIT.usage)
      const p = await client.call<PinView>('POST', '/pins', { cid, layer, ...(owner != null ? { owner } : {}) })
      console.log(values.json === true ? JSON.stringify(p) : `pinned ${p.cid} in ${p.layer}`)
      return 0
    }
    case 'ls':
    case 'list':
    case undefined: {
      const { pins } = await client.call<{ pins: PinView[] }>('GET', `/pins${query({ layer, owner, cid: str(values.cid) })}`)
      if (values.json === true) { console.log(JSON.stringify(pins, null, 2)); return 0 }
      if (pins.length === 0) { console.log('no pins'); return 0 }
      for (const p of pins) console.log(`${p.cid}  ${p.layer.padEnd(10)}  ${formatBytes(p.size).padStart(10)}  ${p.owner ?? ''}`)
      return 0
    }
    case 'rm':
    case 'remove': {
      if (cid == null) throw new CliError('ERR_USAGE', 'pin rm needs a CID (see --help)', EXIT.usage)
      const r = await client.call<{ removed: number }>('DELETE', `/pins/${encodeURIComponent(cid)}${query({ layer, owner })}`)
      console.log(values.json === true ? JSON.stringify(r) : `removed ${r.removed} pin${r.removed === 1 ? '' : 's'}`)
      return 0
    }
    default:
      throw new CliError('ERR_USAGE', `unknown pin command: ${sub} (see --help)`, EXIT.usage)
  }
}
