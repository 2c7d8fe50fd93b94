import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import type { KeyPair } from '@hearth/trust'
import { createDeviceSigner, createDocumentStore, createEd25519Verifier, createSyncEngine, createMemoryChannelPair } from '../src/index.js'
import type { DocumentStore, MemoryChannelOptions, PeerSession, Signer, SyncEngine, SyncEngineInit, Verifier } from '../src/index.js'

/**
 * A tiny stand-in for the trust graph: which agent each device acts for.
 * The daemon passes graph.mayWrite instead; the store and engine only see
 * the Verifier interface.
 */
export class Directory {
  readonly agentOf = new Map<string, string>()
  certify (device: string, agent: string): void { this.agentOf.set(device, agent) }
  verifier (): Verifier {
    return createEd25519Verifier({
      mayWrite: (device, acl) => {
        const agent = this.agentOf.get(device)
        return agent != null && (acl.owner === agent || acl.writers.includes(agent))
      }
    })
  }
}

export interface TestNode {
  name: string
  path: string
  key: KeyPair
  signer: Signer
  deviceId: string
  agentId: string
  store: DocumentStore
  engine: SyncEngine
  reopen: () => void
  close: () => void
}

export function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-sync-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function makeNode (dir: string, name: string, dirTable: Directory, opts: { agent?: KeyPair, engine?: SyncEngineInit, cacheSize?: number, synchronous?: 'full' | 'normal', maxChangeBytes?: number, acceptOffer?: (peer: string, doc: string) => boolean } = {}): TestNode {
  const key = generateKeyPair()
  const agent = opts.agent ?? generateKeyPair()
  const deviceId = keyIdFromPublicKey(key.publicKey)
  const agentId = keyIdFromPublicKey(agent.publicKey)
  dirTable.certify(deviceId, agentId)
  const signer = createDeviceSigner(key)
  const verifier = dirTable.verifier()
  const path = join(dir, `${name}.sqlite`)
  const node = { name, path, key, signer, deviceId, agentId } as TestNode
  const open = (): void => {
    node.store = createDocumentStore({ path, synchronous: opts.synchronous ?? 'normal', cacheSize: opts.cacheSize, maxChangeBytes: opts.maxChangeBytes }, { signer, verifier })
    node.engine = createSyncEngine({ syncStateFlushMs: 50, ...opts.engine }, { store: node.store, verifier, acceptOffer: opts.acceptOffer })
  }
  node.close = () => { node.engine.stop(); node.store.close() }
  node.reopen = () => { node.close(); open() }
  open()
  return node
}

/** connects two nodes; returns [a's session to b, b's session to a] */
export function link (a: TestNode, b: TestNode, opts: { aDelayMs?: number, bDelayMs?: number } = {}): [PeerSession, PeerSession] {
  const [ca, cb] = createMemoryChannelPair({ delayMs: opts.aDelayMs ?? 0 } satisfies MemoryChannelOptions, { delayMs: opts.bDelayMs ?? 0 })
  return [a.engine.connect(b.deviceId, ca), b.engine.connect(a.deviceId, cb)]
}

export async function waitFor (cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

export function sameHeads (a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join()
}
