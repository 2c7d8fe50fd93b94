import type { P2PStatus, Readiness } from '../../node.js'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { HearthClient } from '../client.js'

export const statusHelp = `usage: hearth status [options]

Shows whether the daemon is alive and ready, its PeerId, addresses, peers and
bootstrap state. Exits 0 when ready, 1 when running but not ready.

${CLIENT_HELP}`

export async function status (args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS, false)
  if (values.help === true) { console.log(statusHelp); return 0 }
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const health = await client.call<{ uptime_s: number, version: string }>('GET', '/health')
  const ready = (await client.request<Readiness>('GET', '/ready')).body
  const p2p = await client.call<P2PStatus>('GET', '/p2p/status')
  const trust = await client.call<{ agent_id: string | null, has_agent_key: boolean }>('GET', '/trust/self')
  if (values.json === true) {
    console.log(JSON.stringify({ api: client.base, health, ready, p2p, trust }, null, 2))
    return ready.ready ? 0 : 1
  }
  const checks = Object.entries(ready.checks).map(([k, v]) => `${k}=${String(v)}`).join(' ')
  console.log(`daemon     ${client.base} (v${health.version}, up ${formatUptime(health.uptime_s)})`)
  console.log(`ready      ${ready.ready ? 'yes' : 'NO'} (${checks})`)
  console.log(`peer id    ${p2p.peer_id}`)
  console.log(`agent      ${trust.agent_id ?? 'none (hearth trust init, or trust join)'}${trust.has_agent_key ? ' (agent key here)' : ''}`)
  console.log(`p2p        ${p2p.enabled ? `on, mdns ${p2p.mdns ? 'on' : 'off'}` : 'off (local-only)'}`)
  for (const a of p2p.addresses) console.log(`  listen   ${a}`)
  if (Object.keys(p2p.labels).length > 0) console.log(`labels     ${Object.entries(p2p.labels).map(([k, v]) => `${k}=${v}`).join(',')}`)
  const relayed = p2p.peers.filter(x => x.path === 'relayed').length
  console.log(`peers      ${p2p.peers.length}${relayed > 0 ? ` (${relayed} relayed)` : ''}`)
  if (p2p.reachability != null) console.log(`reachable  ${p2p.reachability.reachability}: ${p2p.reachability.reason}`)
  if (p2p.relay.serving || p2p.relay.reserved_on.length > 0) {
    console.log(`relay      ${p2p.relay.serving ? `serving ${p2p.relay.reservations} reservation${p2p.relay.reservations === 1 ? '' : 's'}` : 'not serving'}${p2p.relay.reserved_on.length > 0 ? `; listening through ${p2p.relay.reserved_on.join(', ')}` : ''}`)
  }
  const hp = p2p.hole_punch
  if (hp.attempts > 0) console.log(`punching   ${hp.successes} relayed connection${hp.successes === 1 ? '' : 's'} made direct, ${Object.values(hp.failures).reduce((a, b) => a + b, 0)} stayed relayed`)
  const sync = p2p.sync
  if (sync.loaded) {
    console.log(`documents  ${sync.documents}, syncing with ${sync.sessions.length} peer${sync.sessions.length === 1 ? '' : 's'}${sync.clients > 0 ? ` and ${sync.clients} automerge-repo client${sync.clients === 1 ? '' : 's'}` : ''}${sync.pending > 0 ? `, ${sync.pending} pending` : ''}${sync.rejected_messages + sync.rejected_by_store > 0 ? `, ${sync.rejected_messages + sync.rejected_by_store} refused` : ''}`)
  }
  const b = p2p.bootstrap
  if (b.configured.length > 0) {
    console.log(`bootstrap  ${b.connected.length}/${b.configured.length} connected`)
    for (const p of b.pending) console.log(`  waiting  ${p.addr}${p.last_error != null ? ` (${p.failures} failures: ${p.last_error})` : ''}`)
  }
  return ready.ready ? 0 : 1
}

export function formatUptime (s: number): string {
  if (s < 60) return `${Math.round(s)}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
}
