/**
 * The automerge-repo baseline's server: a Repo with its WebSocket server
 * adapter and its Node filesystem storage holding `count` small documents,
 * as automerge-repo's own sync server runs. The documents are written into
 * the storage first (Repo.create of 10,000 documents takes many minutes
 * here), so the server starts cold and loads each when it is asked for, as
 * the daemon reads its from SQLite. Writes their URLs to a file, then
 * applies a change to a document for each `{"change": url}` line on stdin
 * and prints when it did.
 * argv: port count urlsFile storageDir
 */
import { writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import * as A from '@automerge/automerge'
import { Repo, generateAutomergeUrl, parseAutomergeUrl } from '@automerge/automerge-repo'
import type { AutomergeUrl, PeerId } from '@automerge/automerge-repo'
import { WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { NodeFSStorageAdapter } from '@automerge/automerge-repo-storage-nodefs'
import { WebSocketServer } from 'ws'

const [port, count, urlsFile, storageDir] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4], process.argv[5]]
const now = (): number => performance.timeOrigin + performance.now()

const storage = new NodeFSStorageAdapter(storageDir)
const urls: string[] = []
for (let i = 0; i < count; i++) {
  const url = generateAutomergeUrl()
  // a snapshot chunk under the document's key, where the Repo's storage looks for it
  await storage.save([parseAutomergeUrl(url).documentId, 'snapshot', 'initial'], A.save(A.from({ title: `doc ${i}`, n: i })))
  urls.push(url)
}
const wss = new WebSocketServer({ host: '127.0.0.1', port })
// a 30 s keep-alive (default 5 s): a busy client must not be cut off mid-sync
const repo = new Repo({ network: [new WebSocketServerAdapter(wss as any, 30_000)], storage, peerId: 'server' as PeerId, sharePolicy: async () => true })
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
