import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'
import { ProgressBar } from '../progress.js'

export const catHelp = `usage: hearth cat <cid> [options]

Writes a blob's bytes to standard output (or --output). --range reads part of
it: 100-199 (bytes 100 to 199), 100- (from 100 to the end), --range=-100 (the
last 100). A blob the daemon lacks is read from peers as it arrives; a
progress bar shows on the terminal while the bytes go to a file or a pipe.

      --range <a-b>          byte range, inclusive
  -o, --output <file>        write to a file instead of standard output
${CLIENT_HELP}`

export async function cat (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...CLIENT_OPTIONS, range: { type: 'string' }, output: { type: 'string', short: 'o' } })
  if (values.help === true) { console.log(catHelp); return 0 }
  if (positionals.length !== 1) throw new CliError('ERR_USAGE', 'cat takes one CID (see --help)', EXIT.usage)
  const range = str(values.range)
  const m = range == null ? undefined : /^(\d+)-(\d*)$|^-(\d+)$/.exec(range)
  if (range != null && (m == null || (m[2] != null && m[2] !== '' && Number(m[2]) < Number(m[1])) || m[3] === '0')) throw new CliError('ERR_USAGE', '--range must look like 100-199 (first byte no later than the last), 100- or -100', EXIT.usage)
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const res = await client.stream('GET', `/blob/${encodeURIComponent(positionals[0])}`, { headers: range != null ? { range: `bytes=${range}` } : {} })
  if (res.statusCode !== 200 && res.statusCode !== 206) throw await client.failure(res)
  const output = str(values.output)
  const total = Number(res.headers['content-length'])
  // a bar on the terminal, unless the bytes themselves go there
  const bar = new ProgressBar(positionals[0].slice(0, 16), Number.isFinite(total) ? total : undefined, { enabled: process.stderr.isTTY === true && (output != null || process.stdout.isTTY !== true) })
  res.on('data', (chunk: Buffer) => bar.tick(chunk.length))
  await pipeline(res, output != null ? createWriteStream(output) : process.stdout)
  bar.finish()
  return 0
}
