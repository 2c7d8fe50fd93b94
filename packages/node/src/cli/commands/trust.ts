import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'
import { formatBytes } from '../progress.js'

export const trustHelp = `usage: hearth trust <command> [options]

  init                                   create an agent (a person or household) on this device
  invite                                 print a one-time invitation (15 min) for a new device
  join <invitation> [--name <name>]      redeem an invitation on the new device
  relate <agent> --as family|friend|community [--days N]
  grant <agent> --layer <layer> --quota <size> [--labels region=eu,...] [--days N]
  revoke <statement-id>                  revoke a certificate, relationship or grant of this agent
  show [agent]                           this device, its agent, devices, relationships and grants

Statements are signed with the agent key, which lives on the device where
\`trust init\` ran; other devices act for the agent through certificates.

${CLIENT_HELP}`

interface Self { device_id: string, agent_id: string | null, has_agent_key: boolean, certificate_expires_at: string | null }

export async function trust (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...CLIENT_OPTIONS,
    as: { type: 'string' },
    layer: { type: 'string' },
    quota: { type: 'string' },
    labels: { type: 'string' },
    days: { type: 'string' },
    name: { type: 'string' }
  })
  if (values.help === true || positionals.length === 0) { console.log(trustHelp); return positionals.length === 0 && values.help !== true ? EXIT.usage : 0 }
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const [sub, arg, ...rest] = positionals
  if (rest.length > 0) throw new CliError('ERR_USAGE', `unexpected argument: ${rest[0]} (see --help)`, EXIT.usage)
  const days = str(values.days) != null ? Number(values.days) : undefined
  if (days != null && (!Number.isInteger(days) || days < 1 || days > 3650)) throw new CliError('ERR_USAGE', '--days must be 1 to 3650', EXIT.usage)
  const print = (json: unknown, text: string): void => { console.log(values.json === true ? JSON.stringify(json, null, 2) : text) }
  const needArg = (what: string): string => {
    if (arg == null) throw new CliError('ERR_USAGE', `trust ${sub} needs ${what} (see --help)`, EXIT.usage)
    return arg
  }

  switch (sub) {
    case 'init': {
      const s = await client.call<Self>('POST', '/trust/init')
      print(s, `agent   ${s.agent_id}\ndevice  ${s.device_id}\nThe agent key is in this device's data folder (keys/agent.key): back it up.`)
      return 0
    }
    case 'invite': {
      const r = await client.call<{ invitation: string, expires_at: string }>('POST', '/trust/invites')
      print(r, `${r.invitation}\n\nOn the new device, within 15 minutes:\n  hearth trust join ${r.invitation}`)
      return 0
    }
    case 'join': {
      const inv = needArg('an invitation')
      const s = await client.call<Self>('POST', '/trust/join', { invitation: inv, ...(str(values.name) != null ? { name: str(values.name) } : {}) })
      print(s, `joined agent ${s.agent_id} (certificate until ${s.certificate_expires_at})`)
      return 0
    }
    case 'relate': {
      const kind = str(values.as)
      if (kind == null) throw new CliError('ERR_USAGE', 'trust relate needs --as family|friend|community', EXIT.usage)
      const r = await client.call<{ id: string }>('POST', '/trust/relationships', { agent: needArg('an agent id'), kind, ...(days != null ? { expires_in_days: days } : {}) })
      print(r, `attested ${kind} with ${arg} (${r.id})`)
      return 0
    }
    case 'grant': {
      const layer = str(values.layer)
      const quota = str(values.quota)
      if (layer == null || quota == null) throw new CliError('ERR_USAGE', 'trust grant needs --layer and --quota', EXIT.usage)
      const labels = str(values.labels) != null
        ? Object.fromEntries(str(values.labels)!.split(',').filter(Boolean).map(p => { const [k, ...v] = p.split('='); return [k.trim(), v.join('=').trim()] }))
        : undefined
      const r = await client.call<{ id: string }>('POST', '/trust/grants', { agent: needArg('an agent id'), layer, quota, ...(labels != null ? { labels } : {}), ...(days != null ? { expires_in_days: days } : {}) })
      print(r, `granted ${arg} ${layer} storage up to ${quota} (${r.id})`)
      return 0
    }
    case 'revoke': {
      const r = await client.call<{ id: string }>('POST', '/trust/revocations', { target: needArg('a statement id') })
      print(r, `revoked ${arg} (${r.id})`)
      return 0
    }
    case 'show': {
      const self = await client.call<Self>('GET', '/trust/self')
      const agentId = arg ?? self.agent_id
      if (agentId == null) {
        print({ self }, `device  ${self.device_id}\nagent   none: run \`hearth trust init\`, or \`hearth trust join <invitation>\``)
        return 0
      }
      const a = await client.call<any>('GET', `/trust/agents/${encodeURIComponent(agentId)}`)
      if (values.json === true) { console.log(JSON.stringify({ self, agent: a }, null, 2)); return 0 }
      if (arg == null) console.log(`device  ${self.device_id}${self.has_agent_key ? ' (holds the agent key)' : ''}`)
      console.log(`agent   ${a.id}`)
      for (const d of a.devices) console.log(`  device        ${d.device} ${d.name ?? ''} (until ${d.expires_at.slice(0, 10)})`)
      for (const r of a.relationships) console.log(`  ${r.kind.padEnd(12)}  ${r.agent}${r.mutual ? ' (mutual)' : r.outgoing != null ? ' (attested by this agent)' : ' (attested by them)'}`)
      for (const g of a.grants_given) console.log(`  grants        ${g.grantee} ${g.layer} ${formatBytes(g.quota_bytes)}${Object.keys(g.labels).length > 0 ? ` on ${Object.entries(g.labels).map(([k, v]) => `${k}=${v}`).join(',')}` : ''}`)
      for (const g of a.grants_received) console.log(`  granted by    ${g.grantor} ${g.layer} ${formatBytes(g.quota_bytes)}`)
      return 0
    }
    default:
      throw new CliError('ERR_USAGE', `unknown trust command: ${sub} (see --help)`, EXIT.usage)
  }
}
