import { Readable } from 'node:stream'
import { PIN_LAYERS } from '@hearth/blobstore'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'
import { ProgressBar, formatBytes } from '../progress.js'

export const pinHelp = `usage: hearth pin add <cid> --layer <layer> [--owner <agent>] [--no-fetch]
       hearth pin ls [--layer <layer>] [--cid <cid>] [--owner <agent>]
       hearth pin rm <cid> [--layer <layer>] [--owner <agent>]

Pins keep a blob in a storage layer (${PIN_LAYERS.join(', ')}) under that
layer's quota. A blob left without pins joins the LRU cache.

pin add of a root this node lacks fetches it first from peers that may give
it, verified block by block, with a progress bar on a terminal; an
interrupted fetch resumes where it stopped when run again. --no-fetch
refuses instead (not found).

${CLIENT_HELP}`

interface PinView { cid: string, layer: string, owner: string | null, size: number, created_at: string }

export async function pin (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...CLIENT_OPTIONS, layer: { type: 'string' }, owner: { type: 'string' }, cid: { type: 'string' }, 'no-fetch': { type: 'boolean' } })
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
      const p = await pinAdd(client, { cid, layer, ...(owner != null ? { owner } : {}), ...(values['no-fetch'] === true ? { fetch: false } : {}) })
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

/**
 * POST /pins asking for progress lines: a root the daemon lacks is fetched
 * from peers first, and each line moves the bar; one already here is
 * pinned at once (a plain JSON answer).
 */
async function pinAdd (client: HearthClient, body: Record<string, unknown>): Promise<PinView> {
  const res = await client.stream('POST', '/pins', { body: Readable.from([JSON.stringify(body)]), headers: { 'content-type': 'application/json', accept: 'application/x-ndjson, application/json' } })
  if (res.statusCode === 201) return await readJson<PinView>(res)
  if (res.statusCode !== 200) throw await client.failure(res)
  const bar = new ProgressBar(String(body.cid).slice(0, 16), undefined)
  let done = 0
  let buffered = ''
  let result: PinView | undefined
  let failure: CliError | undefined
  for await (const chunk of res) {
    buffered += String(chunk)
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const msg = JSON.parse(buffered.slice(0, nl))
      buffered = buffered.slice(nl + 1)
      if (msg.type === 'progress') {
        bar.setTotal(msg.total ?? undefined)
        bar.tick(msg.bytes - done)
        done = msg.bytes
      } else if (msg.type === 'pinned') result = msg.pin
      else if (msg.type === 'error') failure = new CliError(msg.error, msg.message)
    }
  }
  bar.finish()
  if (failure != null) throw failure
  if (result == null) throw new CliError('ERR_INTERRUPTED', 'the daemon closed the answer before the pin was made')
  return result
}

async function readJson<T> (res: AsyncIterable<unknown>): Promise<T> {
  let text = ''
  for await (const chunk of res) text += String(chunk)
  return JSON.parse(text) as T
}
