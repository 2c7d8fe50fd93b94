import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'
import { formatBytes } from '../progress.js'

export const replicationHelp = `usage: hearth replication [options]
       hearth replication why <cid> [options]

Shows where the roots this device pinned are held — per root its health and
per holder its failure domain, role and last holding proof — and what this
node holds for its own agent's other devices and for the agents its agent
grants storage to: per line the quota and what is used, per root its state
(held, fetching, over-quota, failed, not-chosen, declined).

Health counts only proven copies on nodes other than the one that pinned the
root: ok (the target is met), repairing (a copy is being made or proven),
degraded (some copies, fewer than the target, and no node left to make
another), unprotected (no proven copy anywhere else).

Exits 1 when a sovereign root is unprotected or degraded, so that
\`hearth replication || alert\` in a cron job warns when your own data is not
backed up.

\`why <cid>\` explains one root: which pin, own-agent rule or grant makes this
node hold it (or not), in which layer, with what quota, its rank in the
rendezvous order and its failure domain, its last proof; and, for a root this
device pinned, why each candidate holder was or was not chosen.

${CLIENT_HELP}`

interface Holder { device: string, domain: string, role: string, confirmed: boolean, proof: { at: string, result: string, by: string } | null }

interface Status {
  agent: string | null
  last_run: string | null
  own: Array<{ cid: string, layer: string, size: number, target: number, copies: number, repairing: boolean, state: string, holders: Holder[] }>
  policy: Array<{ agent: string, layer: string, rule: string, quota_bytes: number | null, used_bytes: number }>
  roots: Array<{ cid: string, owner: string, layer: string, size: number, state: string, health: string, error?: string }>
}

interface CandidateView { device: string, name: string | null, rule: string, rank: number, domain: string, chosen: boolean, reason: string, holds: boolean, confirmed: boolean, proof: Holder['proof'] }

interface Explanation {
  cid: string
  pins: Array<{ layer: string, owner: string | null, why: string }>
  cached: boolean
  last_run: string | null
  as_owner: Array<{ layer: string, target: number, copies: number, state: string, why: string, candidates: CandidateView[] }>
  as_holder: Array<{ owner: string, layer: string, state: string, why: string, quota: { quota_bytes: number | null, used_bytes: number, left_bytes: number | null }, last_proof: { at: string, device: string, answer: string } | null, relationships: string[] }>
}

const domain = (d: string): string => d.replace(/^\/+|\/+$/g, '') || '-'
const proofText = (p: Holder['proof']): string => p == null ? 'not challenged yet' : `proof ${p.result} at ${p.at}${p.by !== 'self' ? ` (reported by ${p.by})` : ''}`

export async function replication (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, CLIENT_OPTIONS, true)
  if (values.help === true) { console.log(replicationHelp); return 0 }
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const [sub, cid, ...rest] = positionals
  if (sub === 'why' || sub === 'explain') {
    if (cid == null || rest.length > 0) throw new CliError('ERR_USAGE', 'replication why needs one CID (see --help)', EXIT.usage)
    return await why(client, cid, values.json === true)
  }
  if (sub != null) throw new CliError('ERR_USAGE', `unknown replication command: ${sub} (see --help)`, EXIT.usage)

  const s = await client.call<Status>('GET', '/replication/status')
  const alarming = s.own.filter(r => r.layer === 'sovereign' && (r.state === 'unprotected' || r.state === 'degraded'))
  if (values.json === true) { console.log(JSON.stringify(s, null, 2)); return alarming.length > 0 ? EXIT.error : EXIT.ok }
  if (s.agent == null) { console.log('this device acts for no agent yet: hearth trust init, or hearth trust join'); return EXIT.ok }
  if (s.own.length > 0) console.log('roots this device pinned:')
  for (const r of s.own) {
    const note = r.state === 'unprotected' && r.repairing ? ' (a first copy is being made)' : ''
    console.log(`  ${r.cid}  ${r.layer.padEnd(10)} ${formatBytes(r.size).padStart(10)}  ${r.state.padEnd(11)} ${r.copies}/${r.target} proven copies${note}`)
    for (const h of r.holders) console.log(`      ${h.device}  ${h.role.padEnd(10)} ${domain(h.domain).padEnd(12)} ${h.confirmed ? 'confirmed' : 'NOT confirmed'}  ${proofText(h.proof)}`)
  }
  const own = s.policy.filter(p => p.rule === 'own-device')
  const granted = s.policy.filter(p => p.rule !== 'own-device')
  const rootsOf = (p: Status['policy'][number]): Status['roots'] => s.roots.filter(r => r.owner === p.agent && r.layer === p.layer)
  if (own.some(p => rootsOf(p).length > 0)) console.log('copies for this agent\'s other devices:')
  for (const p of own) {
    for (const r of rootsOf(p)) console.log(`  ${r.cid}  ${r.layer.padEnd(10)} ${r.state.padEnd(10)} ${formatBytes(r.size).padStart(10)}  ${r.health}${r.error != null ? `  ${r.error}` : ''}`)
  }
  if (granted.length === 0) console.log('this agent grants storage to nobody (hearth trust grant <agent> --layer … --quota …)')
  for (const p of granted) {
    console.log(`for ${p.agent}  ${p.layer.padEnd(10)} ${formatBytes(p.used_bytes)} of ${p.quota_bytes == null ? 'no limit' : formatBytes(p.quota_bytes)}`)
    for (const r of rootsOf(p)) console.log(`  ${r.cid}  ${r.state.padEnd(10)} ${formatBytes(r.size).padStart(10)}  ${r.health}${r.error != null ? `  ${r.error}` : ''}`)
  }
  console.log(`last pass: ${s.last_run ?? 'not yet'}`)
  if (alarming.length > 0) {
    console.error(`${alarming.length} sovereign root${alarming.length === 1 ? ' is' : 's are'} not backed up to target (${[...new Set(alarming.map(r => r.state))].join(', ')})`)
    return EXIT.error
  }
  return EXIT.ok
}

async function why (client: HearthClient, cid: string, json: boolean): Promise<number> {
  const e = await client.call<Explanation>('GET', `/replication/explain/${encodeURIComponent(cid)}`)
  if (json) { console.log(JSON.stringify(e, null, 2)); return EXIT.ok }
  console.log(e.cid)
  if (e.pins.length === 0) console.log(e.cached ? '  here in the cache only (read-through, evictable), with no pin' : '  not held here')
  for (const p of e.pins) console.log(`  pin ${p.layer}${p.owner != null ? ` for ${p.owner}` : ''}: ${p.why}`)
  for (const o of e.as_owner) {
    console.log(`  as its owner (${o.layer}): ${o.why}`)
    for (const c of o.candidates) {
      const name = c.name != null ? ` (${c.name})` : ''
      console.log(`    #${String(c.rank).padEnd(3)} ${c.device}${name}  ${c.rule.padEnd(10)} ${domain(c.domain).padEnd(12)} ${c.chosen ? 'chosen' : `not chosen: ${c.reason}`}${c.holds ? `, holds it, ${c.confirmed ? 'proven' : proofText(c.proof)}` : ''}`)
    }
  }
  for (const h of e.as_holder) {
    const quota = h.quota.quota_bytes == null ? `${formatBytes(h.quota.used_bytes)} used, no limit of its own` : `${formatBytes(h.quota.used_bytes)} of ${formatBytes(h.quota.quota_bytes)} used, ${formatBytes(h.quota.left_bytes ?? 0)} left`
    console.log(`  for ${h.owner} (${h.layer}): ${h.why}`)
    console.log(`    quota: ${quota}${h.relationships.length > 0 ? `; related as ${h.relationships.join(', ')}` : ''}`)
    console.log(`    last proof answered: ${h.last_proof == null ? 'none yet' : `${h.last_proof.answer} for ${h.last_proof.device} at ${h.last_proof.at}`}`)
  }
  if (e.as_owner.length === 0 && e.as_holder.length === 0) console.log('  no replication rule covers it here: not pinned by this device, and no agent this node holds for pinned it')
  console.log(`last pass: ${e.last_run ?? 'not yet'}`)
  return EXIT.ok
}
