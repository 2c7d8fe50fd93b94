import { createSocket } from 'node:dgram'
import { isIPv4 } from 'node:net'

/**
 * A minimal authoritative DNS server on 127.0.0.1 for tests: answers A and
 * AAAA queries for the names in `records` (mutable while it runs), NXDOMAIN
 * for anything else.
 */
export interface TestDnsServer {
  port: number
  records: Map<string, string[]>
  queries: number
  close: () => Promise<void>
}

function readName (msg: Buffer, offset: number): { name: string, end: number } {
  const labels: string[] = []
  let i = offset
  while (msg[i] !== 0) {
    const len = msg[i]
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'))
    i += len + 1
  }
  return { name: labels.join('.').toLowerCase(), end: i + 1 }
}

function ipv6Bytes (ip: string): Buffer {
  const [head, tail = ''] = ip.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === '' ? [] : tail.split(':')
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  const out = Buffer.alloc(16)
  groups.forEach((g, n) => out.writeUInt16BE(parseInt(g, 16), n * 2))
  return out
}

export async function startDnsServer (records: Record<string, string[]> = {}): Promise<TestDnsServer> {
  const socket = createSocket('udp4')
  const server: TestDnsServer = {
    port: 0,
    records: new Map(Object.entries(records).map(([k, v]) => [k.toLowerCase(), v])),
    queries: 0,
    close: async () => { await new Promise<void>(resolve => socket.close(() => resolve())) }
  }
  socket.on('message', (msg, rinfo) => {
    server.queries++
    const { name, end } = readName(msg, 12)
    const qtype = msg.readUInt16BE(end)
    const question = msg.subarray(12, end + 4)
    const known = server.records.get(name)
    const ips = (known ?? []).filter(ip => qtype === 1 ? isIPv4(ip) : qtype === 28 ? !isIPv4(ip) : false)
    const header = Buffer.alloc(12)
    header.writeUInt16BE(msg.readUInt16BE(0), 0)
    header.writeUInt16BE(known == null ? 0x8183 : 0x8180, 2) // response, RD, RA; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(ips.length, 6)
    const answers = ips.map(ip => {
      const rdata = qtype === 1 ? Buffer.from(ip.split('.').map(Number)) : ipv6Bytes(ip)
      const rr = Buffer.alloc(12)
      rr.writeUInt16BE(0xc00c, 0) // pointer to the question's name
      rr.writeUInt16BE(qtype, 2)
      rr.writeUInt16BE(1, 4) // IN
      rr.writeUInt32BE(5, 6) // TTL
      rr.writeUInt16BE(rdata.length, 10)
      return Buffer.concat([rr, rdata])
    })
    socket.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address)
  })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  server.port = socket.address().port
  return server
}
