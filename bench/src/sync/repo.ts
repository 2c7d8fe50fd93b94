import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../tools.js'
import { spawnJsonChild } from './child.js'
import type { SyncRun } from './index.js'

/**
 * Two automerge-repo Repos in two processes over automerge-repo's own
 * WebSocket adapters: the server holds `count` documents, the client finds
 * all of them, then the server changes one at a time and the client reports
 * when it sees each change.
 */
export async function runRepo (count: number, samples: number): Promise<SyncRun> {
  const work = await mkdtemp(join(tmpdir(), 'hearth-bench-repo-'))
  const port = await freePort()
  const server = spawnJsonChild('repo-server', [String(port), String(count), join(work, 'urls.json'), join(work, 'storage')])
  let client: ReturnType<typeof spawnJsonChild> | undefined
  try {
    await server.next(m => m.ready === true)
    client = spawnJsonChild('repo-client', [`ws://127.0.0.1:${port}`, join(work, 'urls.json'), '32', String(samples)])
    const synced = await client.next<{ synced: number, ms: number, retries: number, bytesRead: number, bytesWritten: number, rssMb: number }>(m => m.synced != null, 3_600_000)
    if (synced.synced !== count) throw new Error(`automerge-repo synced ${synced.synced} of ${count}`)
    await client.next(m => m.watching != null)
    const urls: string[] = JSON.parse(await readFile(join(work, 'urls.json'), 'utf8'))
    const latencies: number[] = []
    for (let i = 0; i < samples; i++) {
      const url = urls[i]
      server.send({ change: url })
      const changed = await server.next<{ at: number }>(m => m.changed === url, 30_000)
      const seen = await client.next<{ at: number }>(m => m.seen === url, 30_000)
      latencies.push(seen.at - changed.at)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    server.send({ rss: true })
    const serverRss = (await server.next<{ rssMb: number }>(m => m.rssMb != null && m.ready == null)).rssMb
    return {
      seconds: synced.ms / 1000,
      bytes: (synced.bytesRead ?? 0) + (synced.bytesWritten ?? 0),
      latenciesMs: latencies,
      rssMb: { sender: serverRss, receiver: synced.rssMb },
      retries: synced.retries
    }
  } finally {
    await client?.stop()
    await server.stop()
    await rm(work, { recursive: true, force: true })
  }
}
