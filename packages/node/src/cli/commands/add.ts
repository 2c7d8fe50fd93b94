import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import { Transform } from 'node:stream'
import { LAYERS, buildDag, hashFile } from '@hearth/blobstore'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'
import { ProgressBar } from '../progress.js'

export const addHelp = `usage: hearth add <file | -> [options]

Adds a file (or standard input, with -) to the daemon's blob store and prints
its CID. A progress bar shows on a terminal. The blob is pinned into --layer.
With --only-hash nothing is sent: the CID the file would get is computed here
(no daemon needed), on a thread per core.

      --layer <layer>        ${LAYERS.join(', ')} (default sovereign; cache leaves it unpinned)
      --owner <agent>        agent id that owns the pin
      --content-type <type>  stored and served back (default: from the file name, else application/octet-stream)
  -n, --only-hash            print the CID without adding anything
      --quiet                print only the CID
${CLIENT_HELP}`

const TYPES: Record<string, string> = {
  '.txt': 'text/plain; charset=utf-8', '.md': 'text/markdown; charset=utf-8', '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.xml': 'application/xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.svg': 'image/svg+xml', '.avif': 'image/avif',
  '.mp3': 'audio/mpeg', '.ogg': 'audio/ogg', '.wav': 'audio/wav', '.flac': 'audio/flac',
  '.mp4': 'video/mp4', '.webm': 'video/webm', '.mov': 'video/quicktime', '.mkv': 'video/x-matroska',
  '.pdf': 'application/pdf', '.zip': 'application/zip', '.gz': 'application/gzip', '.tar': 'application/x-tar'
}

export async function add (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...CLIENT_OPTIONS,
    layer: { type: 'string' },
    owner: { type: 'string' },
    'content-type': { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    'only-hash': { type: 'boolean', short: 'n' }
  })
  if (values.help === true) { console.log(addHelp); return 0 }
  if (positionals.length !== 1) throw new CliError('ERR_USAGE', 'add takes one file, or - for standard input (see --help)', EXIT.usage)
  const layer = str(values.layer)
  if (layer != null && !(LAYERS as readonly string[]).includes(layer)) {
    throw new CliError('ERR_USAGE', `--layer must be one of ${LAYERS.join(', ')}`, EXIT.usage)
  }
  const path = positionals[0]
  let size: number | undefined
  if (path !== '-') {
    try {
      const s = await stat(path)
      if (!s.isFile()) throw new CliError('ERR_USAGE', `${path} is not a file`, EXIT.usage)
      size = s.size
    } catch (err: any) {
      if (err instanceof CliError) throw err
      throw new CliError('ERR_NO_FILE', `cannot read ${path}: ${err.code ?? err.message}`)
    }
  }
  if (values['only-hash'] === true) return await onlyHash(path, size, values.quiet === true, values.json === true)
  const contentType = str(values['content-type']) ?? (path === '-' ? undefined : TYPES[extname(path).toLowerCase()]) ?? 'application/octet-stream'
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const query = new URLSearchParams()
  if (layer != null) query.set('layer', layer)
  const owner = str(values.owner)
  if (owner != null) query.set('owner', owner)

  const bar = new ProgressBar(path === '-' ? 'stdin' : basename(path), size, { enabled: values.quiet !== true && process.stderr.isTTY === true })
  const counter = new Transform({
    transform (chunk: Buffer, _enc, cb) { bar.tick(chunk.length); cb(null, chunk) }
  })
  const source = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1024 * 1024 })
  source.on('error', (err: Error) => counter.destroy(err))
  source.pipe(counter)
  const headers: Record<string, string> = { 'content-type': contentType }
  if (size != null) headers['content-length'] = String(size)
  else headers['transfer-encoding'] = 'chunked'
  const qs = query.toString()
  const res = await client.stream('POST', `/blob${qs === '' ? '' : `?${qs}`}`, { body: counter, headers })
  if (res.statusCode !== 201) throw await client.failure(res)
  let text = ''
  for await (const chunk of res) text += String(chunk)
  bar.finish()
  const result = JSON.parse(text) as { cid: string, size: number, layer: string }
  if (values.json === true) console.log(JSON.stringify(result))
  else if (values.quiet === true) console.log(result.cid)
  else console.log(`added ${result.cid} (${result.size} bytes, ${result.layer})`)
  return 0
}

/** `--only-hash`: the CID computed here, as an add would give it */
async function onlyHash (path: string, size: number | undefined, quiet: boolean, json: boolean): Promise<number> {
  const bar = new ProgressBar(path === '-' ? 'stdin' : basename(path), size, { enabled: !quiet && process.stderr.isTTY === true })
  let seen = 0
  const onProgress = (bytes: number): void => { bar.tick(bytes - seen); seen = bytes }
  let result
  try {
    result = path === '-'
      ? await buildDag(process.stdin, { put: () => {} }, { onProgress })
      : await hashFile(path, { onProgress })
  } catch (err: any) {
    throw new CliError(err?.code ?? 'ERR_HASH', `cannot hash ${path}: ${err?.message ?? err}`)
  }
  bar.finish()
  const cid = result.cid.toString()
  if (json) console.log(JSON.stringify({ cid, size: result.size }))
  else if (quiet) console.log(cid)
  else console.log(`${cid} (${result.size} bytes, not added)`)
  return 0
}
