/**
 * The automerge-repo baseline's server: a Repo with its WebSocket server
 * adapter holding `count` small documents in memory (the warm case, its
 * best). Writes their URLs to a file, then applies a change to a document
 * for each `{"change": url}` line on stdin and prints when it did.
 * argv: port count urlsFile
 */
import { writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { Repo } from '@automerge/automerge-repo'
import type { AutomergeUrl, PeerId } from '@automerge/automerge-repo'
import { WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { WebSocketServer } from 'ws'

const [port, count, urlsFile] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]]
const now = (): number => performance.timeOrigin + performance.now()

const wss = new WebSocketServer({ host: '127.0.0.1', port })
const repo = new Repo({ network: [new WebSocketServerAdapter(wss as any)], peerId: 'server' as PeerId, sharePolicy: async () => true })
const urls: string[] = []
for (let i = 0; i < count; i++) urls.push(repo.create<{ title: string, n: number }>({ title: `doc ${i}`, n: i }).url)
await writeFile(urlsFile, JSON.stringify(urls))
console.log(JSON.stringify({ ready: true, rssMb: process.memoryUsage().rss / 1048576 }))

for await (const line of createInterface({ input: process.stdin })) {
  const msg = JSON.parse(line) as { change?: string, rss?: boolean }
  if (msg.rss === true) { console.log(JSON.stringify({ rssMb: process.memoryUsage().rss / 1048576 })); continue }
  if (msg.change == null) continue
  const handle = await repo.find<{ n: number }>(msg.change as AutomergeUrl)
  const at = now()
  handle.change(d => { d.n++ })
  console.log(JSON.stringify({ changed: msg.change, at }))
}
