import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'

export const tokenHelp = `usage: hearth token create --name <name> --scope read|write|admin
       hearth token ls
       hearth token revoke <id>

Scoped API tokens, one per doorway, browser app or script, each revocable on
its own. read: every GET (needed only where HEARTH_OPEN_READS is false, the
default when the API listens beyond loopback); write: also add, pin, unpin
and edit documents; admin: also trust, tokens, peers and gc. The daemon's own
token ($HEARTH_DATA/api-token) is an admin token. A new token is printed
once: node.db keeps only its SHA-256.

${CLIENT_HELP}`

interface TokenView { id: string, name: string, scope: string, created_at: string, last_used_at: string | null, token?: string }

export async function token (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...CLIENT_OPTIONS, name: { type: 'string' }, scope: { type: 'string' } })
  if (values.help === true) { console.log(tokenHelp); return 0 }
  const [sub, id, ...rest] = positionals
  if (rest.length > 0) throw new CliError('ERR_USAGE', `unexpected argument: ${rest[0]} (see --help)`, EXIT.usage)
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  switch (sub) {
    case 'create': {
      const name = str(values.name)
      const scope = str(values.scope)
      if (name == null || scope == null || !['read', 'write', 'admin'].includes(scope)) throw new CliError('ERR_USAGE', 'token create needs --name and --scope read|write|admin (see --help)', EXIT.usage)
      const t = await client.call<TokenView>('POST', '/tokens', { name, scope })
      if (values.json === true) console.log(JSON.stringify(t, null, 2))
      else {
        console.log(t.token)
        console.error(`made ${t.scope} token ${t.id} for ${t.name}: it is shown only now; revoke it with hearth token revoke ${t.id}`)
      }
      return 0
    }
    case 'ls':
    case 'list': {
      const { tokens } = await client.call<{ tokens: TokenView[] }>('GET', '/tokens')
      if (values.json === true) { console.log(JSON.stringify(tokens, null, 2)); return 0 }
      if (tokens.length === 0) { console.log('no tokens (the daemon\'s own admin token is in $HEARTH_DATA/api-token)'); return 0 }
      console.log(`${'id'.padEnd(12)}  ${'scope'.padEnd(5)}  ${'name'.padEnd(20)}  ${'created'.padEnd(20)}  last used`)
      for (const t of tokens) console.log(`${t.id.padEnd(12)}  ${t.scope.padEnd(5)}  ${t.name.slice(0, 20).padEnd(20)}  ${t.created_at.slice(0, 19).padEnd(20)}  ${t.last_used_at?.slice(0, 16) ?? 'never'}`)
      return 0
    }
    case 'revoke':
    case 'rm': {
      if (id == null) throw new CliError('ERR_USAGE', 'token revoke needs the token\'s id (hearth token ls)', EXIT.usage)
      await client.call('DELETE', `/tokens/${encodeURIComponent(id)}`)
      console.log(`revoked ${id}`)
      return 0
    }
    default:
      throw new CliError('ERR_USAGE', sub == null ? 'token needs create, ls or revoke (see --help)' : `unknown token command: ${sub} (see --help)`, EXIT.usage)
  }
}
