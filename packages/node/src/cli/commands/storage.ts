import { CLIENT_HELP, CLIENT_OPTIONS, parse, str } from '../args.js'
import { HearthClient } from '../client.js'
import { formatBytes } from '../progress.js'

export const storageHelp = `usage: hearth storage [options]

Shows, per storage layer, the bytes used, the quota and the number of blobs,
and the block store's totals and integrity scrub.

${CLIENT_HELP}`

interface Disk { free_bytes: number | null, full: boolean, full_since: string | null, reserve_bytes: number, reserve_held: boolean }

interface Storage {
  layers: Record<string, { used_bytes: number, quota_bytes: number | null, roots: number }>
  blocks: { count: number, bytes: number, unreferenced: number, quarantined: number }
  scrub: { passes?: number, corrupt?: number }
  disk: Disk
}

interface GcResult { blocks_deleted: number, bytes_freed: number, bytes_released: number, roots_evicted: number, duration_ms: number, disk: Disk }

const diskLine = (d: Disk): string => d.full
  ? `disk: FULL since ${d.full_since ?? '?'} (${d.free_bytes != null ? formatBytes(d.free_bytes) : '?'} free): writes answer 507 until space is freed — hearth pin rm <cid>, then hearth gc`
  : `disk: ${d.free_bytes != null ? formatBytes(d.free_bytes) : '?'} free${d.reserve_bytes > 0 ? `, ${formatBytes(d.reserve_bytes)} reserve ${d.reserve_held ? 'held' : 'not held'}` : ''}`

export const gcHelp = `usage: hearth gc [options]

Collects now: evicts the cache down to its quota and to the space the disk
has free, deletes blocks nothing references, and hands the freed pages back
to the file system. Works on a full disk (after hearth pin rm).

${CLIENT_HELP}`

export async function gc (args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS, false)
  if (values.help === true) { console.log(gcHelp); return 0 }
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const r = await client.call<GcResult>('POST', '/storage/gc', {})
  if (values.json === true) { console.log(JSON.stringify(r, null, 2)); return 0 }
  console.log(`gc: ${r.roots_evicted} cached blobs evicted, ${r.blocks_deleted} blocks deleted (${formatBytes(r.bytes_freed)}), ${formatBytes(r.bytes_released)} given back to the file system in ${r.duration_ms} ms`)
  console.log(diskLine(r.disk))
  return r.disk.full ? 1 : 0
}

export async function storage (args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS, false)
  if (values.help === true) { console.log(storageHelp); return 0 }
  const client = new HearthClient({ data: str(values.data), api: str(values.api), token: str(values.token) })
  const s = await client.call<Storage>('GET', '/storage')
  if (values.json === true) { console.log(JSON.stringify(s, null, 2)); return 0 }
  console.log(`${'layer'.padEnd(11)} ${'used'.padStart(10)} ${'quota'.padStart(10)} ${'use'.padStart(5)} ${'blobs'.padStart(7)}`)
  for (const [name, l] of Object.entries(s.layers)) {
    const pct = l.quota_bytes != null && l.quota_bytes > 0 ? `${Math.round((100 * l.used_bytes) / l.quota_bytes)}%` : '-'
    console.log(`${name.padEnd(11)} ${formatBytes(l.used_bytes).padStart(10)} ${(l.quota_bytes != null ? formatBytes(l.quota_bytes) : 'unlimited').padStart(10)} ${pct.padStart(5)} ${String(l.roots).padStart(7)}`)
  }
  console.log(`\nblocks: ${s.blocks.count} (${formatBytes(s.blocks.bytes)}), ${s.blocks.unreferenced} awaiting GC, ${s.blocks.quarantined} quarantined`)
  console.log(`scrub: ${s.scrub.passes ?? 0} passes, ${s.scrub.corrupt ?? 0} corrupt blocks found`)
  if (s.disk != null) console.log(diskLine(s.disk))
  return s.disk?.full === true ? 1 : 0
}
