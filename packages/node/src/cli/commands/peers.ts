import type { PeerView } from '../../node.js'
import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { CliError, EXIT, HearthClient } from '../client.js'

export const peersHelp = `usage: hearth peers [ls] [options]
       hearth peers connect <multiaddr> [options]
       hearth peers disconnect <peer-id> [options]

Lists the peers this daemon is connected to (each one's path: direct, or
relayed through a circuit relay; who it is to this node: linked, bootstrap,
known or stranger), dials one, or hangs up on one.

${CLIENT_HELP}`

export async function peers (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, CLIENT_OPTIONS)
  if (values.help === true) { console.log(peersHelp); return 0 }
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const [sub = 'ls', arg, ...rest] = positionals
  if (rest.length > 0) throw new CliError('ERR_USAGE', `unexpected argument: ${rest[0]} (see --help)`, EXIT.usage)
  switch (sub) {
    case 'ls':
    case 'list': {
      const { peers } = await client.call<{ peers: PeerView[] }>('GET', '/p2p/peers')
      if (values.json === true) { console.log(JSON.stringify(peers, null, 2)); return 0 }
      if (peers.length === 0) { console.log('no peers connected'); return 0 }
      console.log(`${'PEER'.padEnd(52)}  ${'PATH'.padEnd(7)}  ${'CLASS'.padEnd(9)}  ${'DIRECTION'.padEnd(9)}  ${'LATENCY'.padStart(9)}  ADDRESS`)
      for (const p of peers) {
        const latency = p.latency_ms != null ? `${p.latency_ms} ms` : '-'
        // a direct connection's address first: that is the one the peer is reached by
        const addr = p.addrs.find(a => !a.includes('/p2p-circuit')) ?? p.addrs[0] ?? ''
        console.log(`${p.peer_id.padEnd(52)}  ${p.path.padEnd(7)}  ${p.class.padEnd(9)}  ${p.direction.padEnd(9)}  ${latency.padStart(9)}  ${addr}`)
      }
      return 0
    }
    case 'connect': {
      if (arg == null) throw new CliError('ERR_USAGE', 'peers connect needs a multiaddr (see --help)', EXIT.usage)
      const res = await client.call<{ peer_id: string }>('POST', '/p2p/connect', { addr: arg })
      console.log(values.json === true ? JSON.stringify(res) : `connected to ${res.peer_id}`)
      return 0
    }
    case 'disconnect': {
      if (arg == null) throw new CliError('ERR_USAGE', 'peers disconnect needs a peer id (see --help)', EXIT.usage)
      await client.call('DELETE', `/p2p/peers/${encodeURIComponent(arg)}`)
      console.log(`disconnected from ${arg}`)
      return 0
    }
    default:
      throw new CliError('ERR_USAGE', `unknown peers command: ${sub} (see --help)`, EXIT.usage)
  }
}
