import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { HearthClient } from '../client.js'
import { formatBytes } from '../progress.js'

export const replicationHelp = `usage: hearth replication [options]

Shows where this agent's own roots are held — per root its health (ok,
repairing, degraded) and per holder its failure domain and last holding
proof — and what this node holds for other agents under the storage grants
its agent gave: per grant the quota and what is used, per root its state
(held, fetching, over-quota, failed, not-chosen).

${CLIENT_HELP}`

interface Holder { device: string, domain: string, confirmed: boolean, proof: { at: string, result: string, by: string } | null }

interface Status {
  agent: string | null
  last_run: string | null
  own: Array<{ cid: string, layer: string, size: number, target: number, state: string, holders: Holder[] }>
  policy: Array<{ agent: string, layer: string, quota_bytes: number, used_bytes: number }>
  roots: Array<{ cid: string, owner: string, layer: string, size: number, state: string, error?: string }>
}

export async function replication (args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS, false)
  if (values.help === true) { console.log(replicationHelp); return 0 }
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const s = await client.call<Status>('GET', '/replication/status')
  if (values.json === true) { console.log(JSON.stringify(s, null, 2)); return 0 }
  if (s.agent == null) { console.log('this device acts for no agent yet: hearth trust init, or hearth trust join'); return 0 }
  if (s.own.length > 0) console.log('this agent\'s roots:')
  for (const r of s.own) {
    console.log(`  ${r.cid}  ${r.layer.padEnd(10)} ${formatBytes(r.size).padStart(10)}  ${r.state.padEnd(9)} ${r.holders.filter(h => h.confirmed).length}/${r.target} confirmed`)
    for (const h of r.holders) console.log(`      ${h.device}  ${(h.domain.replace(/^\/+|\/+$/g, '') || '-').padEnd(12)} ${h.confirmed ? 'confirmed' : 'NOT confirmed'}${h.proof != null ? `  proof ${h.proof.result} at ${h.proof.at}${h.proof.by !== 'self' ? ` (reported by ${h.proof.by})` : ''}` : '  not challenged yet'}`)
  }
  if (s.policy.length === 0) { console.log('this agent grants storage to nobody: nothing to hold (hearth trust grant <agent> --layer … --quota …)'); return 0 }
  for (const p of s.policy) console.log(`for ${p.agent}  ${p.layer.padEnd(10)} ${formatBytes(p.used_bytes)} of ${formatBytes(p.quota_bytes)}`)
  for (const r of s.roots) console.log(`  ${r.cid}  ${r.state.padEnd(10)} ${formatBytes(r.size).padStart(10)}${r.error != null ? `  ${r.error}` : ''}`)
  console.log(`last pass: ${s.last_run ?? 'not yet'}`)
  return 0
}
