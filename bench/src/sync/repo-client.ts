/**
 * The automerge-repo baseline's client: a Repo with its WebSocket client
 * adapter that finds every document of the server (`concurrency` at a time:
 * asking for all 10,000 at once fails), reports the time and the bytes the
 * socket moved, then prints each change it sees on the watched documents.
 * argv: wsUrl urlsFile concurrency watchCount
 */
import { readFile } from 'node:fs/promises'
import { Repo } from '@automerge/automerge-repo'
import type { AutomergeUrl, DocHandle, PeerId } from '@automerge/automerge-repo'
import { WebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket'

const [url, urlsFile, concurrency, watch] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])]
const now = (): number => performance.timeOrigin + performance.now()
const urls = JSON.parse(await readFile(urlsFile, 'utf8')) as AutomergeUrl[]

const adapter = new WebSocketClientAdapter(url)
const repo = new Repo({ network: [adapter], peerId: 'client' as PeerId, sharePolicy: async () => true })
while (repo.peers.length === 0) await new Promise(resolve => setTimeout(resolve, 5))

const t0 = performance.now()
const handles = new Map<string, DocHandle<{ n: number }>>()
let next = 0
// a find comes back "unavailable" when the server takes longer than 60 s to answer it (a cold server
// under load): ask again, as an application would, and count how often
let retries = 0
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < urls.length) {
    const u = urls[next++]
    const handle = await repo.find<{ n: number }>(u, { allowableStates: ['ready', 'unavailable'] })
    // a request the server did not answer within automerge-repo's 60 s marks the handle unavailable: ask again
    for (let attempt = 1; handle.state !== 'ready'; attempt++) {
      if (attempt > 10) throw new Error(`document ${u} stayed unavailable`)
      retries++
      handle.request()
      await handle.whenReady(['ready', 'unavailable'])
    }
    handles.set(u, handle)
    if (handles.size % 1000 === 0) process.stderr.write(`automerge-repo client: ${handles.size} documents, ${retries} asked again\n`)
  }
}))
const ms = performance.now() - t0
const socket = (adapter.socket as any)?._socket
console.log(JSON.stringify({ synced: handles.size, ms, retries, bytesRead: socket?.bytesRead ?? null, bytesWritten: socket?.bytesWritten ?? null, rssMb: process.memoryUsage().rss / 1048576 }))

for (const u of urls.slice(0, watch)) {
  handles.get(u)!.on('change', () => { console.log(JSON.stringify({ seen: u, at: now() })) })
}
console.log(JSON.stringify({ watching: watch }))
