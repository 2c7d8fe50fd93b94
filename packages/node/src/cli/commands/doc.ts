import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'

export const docHelp = `usage: hearth doc new [<file.json> | - | --content <json>] [--writers a,b] [--readers c] [--public]
       hearth doc ls
       hearth doc show <id>                  the document as JSON
       hearth doc info <id>                  owner, ACL, heads
       hearth doc patch <id> <json | file | ->   a JSON Merge Patch: objects merge, null deletes
       hearth doc acl <id> [--writers a,b] [--readers c] [--public | --private]
       hearth doc watch <id> [--value]       print each new state as it arrives (Ctrl-C to stop)
       hearth doc export <id> -o <file>      the Automerge binary

Documents are Automerge documents owned by this node's agent (made on
its first start, or by \`hearth trust init\`). Ids are automerge:<id> or the bare <id>.
Writers and readers are agent ids (z6Mk…).

      --writers <ids>    comma-separated agents who may write
      --readers <ids>    comma-separated agents who may read
      --public           anyone may read it (--private undoes it)
      --content <json>   the initial content, inline
      --value            (watch) print the JSON with each state
  -o, --output <file>    (export) where to write
${CLIENT_HELP}`

const OPTIONS = {
  ...CLIENT_OPTIONS,
  writers: { type: 'string' as const },
  readers: { type: 'string' as const },
  public: { type: 'boolean' as const },
  private: { type: 'boolean' as const },
  content: { type: 'string' as const },
  value: { type: 'boolean' as const },
  output: { type: 'string' as const, short: 'o' }
}

interface DocInfo { id: string, url: string, owner: string, acl: { writers: string[], readers: string[], public: boolean }, heads: string[] }

const list = (s: string | undefined): string[] | undefined => s == null ? undefined : s.split(',').map(x => x.trim()).filter(x => x !== '')

/** JSON from an inline argument, a file, or standard input (`-`). */
async function readJson (arg: string | undefined, what: string): Promise<unknown> {
  if (arg == null) throw new CliError('ERR_USAGE', `${what} is missing (see --help)`, EXIT.usage)
  let text = arg
  if (arg === '-') {
    const parts: Buffer[] = []
    for await (const c of process.stdin) parts.push(c as Buffer)
    text = Buffer.concat(parts).toString('utf8')
  } else if (!/^\s*[[{"]/.test(arg)) {
    try { text = await readFile(arg, 'utf8') } catch (err: any) { throw new CliError('ERR_USAGE', `cannot read ${arg}: ${err?.code ?? err?.message}`, EXIT.usage) }
  }
  try { return JSON.parse(text) } catch { throw new CliError('ERR_USAGE', `${what} is not valid JSON`, EXIT.usage) }
}

export async function doc (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS)
  if (values.help === true) { console.log(docHelp); return 0 }
  const [sub, id, arg, ...rest] = positionals
  if (rest.length > 0) throw new CliError('ERR_USAGE', `unexpected argument: ${rest[0]} (see --help)`, EXIT.usage)
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const asJson = values.json === true
  const needId = (): string => {
    if (id == null) throw new CliError('ERR_USAGE', `doc ${sub} needs a document id (see --help)`, EXIT.usage)
    return encodeURIComponent(id)
  }
  switch (sub) {
    case 'new':
    case 'create': {
      const content = str(values.content) != null ? await readJson(str(values.content), 'the content') : id != null ? await readJson(id, 'the content') : {}
      const q = new URLSearchParams()
      if (str(values.writers) != null) q.set('writers', str(values.writers)!)
      if (str(values.readers) != null) q.set('readers', str(values.readers)!)
      if (values.public === true) q.set('public', 'true')
      const info = await client.call<DocInfo>('POST', `/docs${q.size > 0 ? `?${q.toString()}` : ''}`, content)
      console.log(asJson ? JSON.stringify(info) : info.url)
      return 0
    }
    case 'ls':
    case 'list':
    case undefined: {
      let after: string | null = null
      const all: DocInfo[] = []
      do {
        const page: { documents: DocInfo[], next: string | null } = await client.call('GET', `/docs?limit=1000${after != null ? `&after=${after}` : ''}`)
        all.push(...page.documents)
        after = page.next
      } while (after != null)
      if (asJson) { console.log(JSON.stringify(all, null, 2)); return 0 }
      if (all.length === 0) { console.log('no documents'); return 0 }
      for (const d of all) console.log(`${d.url}  ${d.acl.public ? 'public ' : 'private'}  owner ${d.owner.slice(0, 16)}…  ${d.acl.writers.length} writers, ${d.acl.readers.length} readers`)
      return 0
    }
    case 'show': {
      const v = await client.call<{ value: unknown }>('GET', `/cache/docs/${needId()}`)
      console.log(JSON.stringify(asJson ? v : v.value, null, 2))
      return 0
    }
    case 'info': {
      console.log(JSON.stringify(await client.call('GET', `/docs/${needId()}/info`), null, 2))
      return 0
    }
    case 'patch': {
      const path = needId()
      const patch = await readJson(arg, 'the patch')
      const r = await client.call<{ heads: string[], hash: string | null }>('PATCH', `/docs/${path}`, patch)
      console.log(asJson ? JSON.stringify(r) : r.hash == null ? 'nothing changed' : `changed: ${r.hash}`)
      return 0
    }
    case 'acl': {
      const path = needId()
      const body: Record<string, unknown> = {}
      if (str(values.writers) != null) body.writers = list(str(values.writers))
      if (str(values.readers) != null) body.readers = list(str(values.readers))
      if (values.public === true) body.public = true
      if (values.private === true) body.public = false
      const info = Object.keys(body).length === 0
        ? await client.call<DocInfo>('GET', `/docs/${path}/info`)
        : await client.call<DocInfo>('PUT', `/docs/${path}/acl`, body)
      console.log(asJson ? JSON.stringify(info.acl) : `owner ${info.owner}\nwriters ${info.acl.writers.join(', ') || '—'}\nreaders ${info.acl.readers.join(', ') || '—'}\n${info.acl.public ? 'public' : 'private'}`)
      return 0
    }
    case 'watch': {
      const res = await client.stream('GET', `/stream/docs/${needId()}${values.value === true ? '?value=true' : ''}`, { headers: { accept: 'text/event-stream' } })
      if (res.statusCode !== 200) throw await client.failure(res)
      let buffer = ''
      for await (const chunk of res) {
        buffer += String(chunk)
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = event.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n')
          if (data === '') continue
          const ev = JSON.parse(data) as { heads: string[], origin: string, value?: unknown }
          console.log(asJson ? data : `${new Date().toISOString()}  ${ev.origin.padEnd(12).slice(0, 12)}  ${ev.heads.map(h => h.slice(0, 12)).join(',')}${ev.value !== undefined ? `  ${JSON.stringify(ev.value)}` : ''}`)
        }
      }
      return 0
    }
    case 'export': {
      const output = str(values.output)
      if (output == null && process.stdout.isTTY === true) throw new CliError('ERR_USAGE', 'doc export writes binary: give -o <file> or redirect standard output', EXIT.usage)
      const res = await client.stream('GET', `/docs/${needId()}`)
      if (res.statusCode !== 200) throw await client.failure(res)
      await pipeline(res, output != null ? createWriteStream(output) : process.stdout)
      return 0
    }
    default:
      throw new CliError('ERR_USAGE', `unknown doc command: ${sub} (see --help)`, EXIT.usage)
  }
}
