import { LRUCache } from 'lru-cache'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { DocumentAcl, DocumentId, DocumentStore, SyncEngine, Verifier } from '@hearth/sync'
import type { ComponentLogger, KeyPair, Logger } from '@hearth/trust'
import { FILES } from '../constants.js'
import { NoAgentError } from '../errors.js'
import { agentsLinked } from '../trust/links.js'
import type { TrustService } from '../trust/service.js'

/** the `@hearth/sync` module, loaded on first use (it brings Automerge's WebAssembly, ~30 MB) */
export type SyncLib = typeof import('@hearth/sync')

export interface OpenDocuments {
  lib: SyncLib
  store: DocumentStore
  engine: SyncEngine
  verifier: Verifier
}

export interface DocumentServiceInit {
  dataDir: string
  deviceKey: KeyPair
  /** a document is compacted once this many change rows wait outside its snapshot */
  compactAfter?: number
  /** how often the compactor looks at documents that changed */
  compactIntervalMs?: number
}

export interface DocumentServiceComponents {
  trust: TrustService
  logger: ComponentLogger
}

const COMPACT_AFTER = 64
const COMPACT_INTERVAL_MS = 30_000
/** documents compacted per pass, so a pass never holds the event loop for long */
const COMPACT_PER_PASS = 32
/** how long a write decision of the trust graph is reused, and how many are kept */
const MAY_WRITE_TTL_MS = 5000
const MAY_WRITE_CACHE = 10_000

/** the ACL names the agent, or the document is public and the agent is linked to this node's */
function sharedWithAgent (acl: DocumentAcl, agent: string, trusted: () => boolean): boolean {
  if (acl.owner === agent || acl.writers.includes(agent) || acl.readers.includes(agent)) return true
  return acl.public && trusted()
}

/**
 * The daemon's documents: the SQLite document store (`docs.db`), its
 * verifier over the trust graph, the sync engine, and the policy of whom a
 * document is shared with. The store is opened at start when `docs.db`
 * exists, else on first use (a document route, an automerge-repo client, a
 * peer's sync stream), so a node without documents never loads Automerge.
 */
export class DocumentService {
  private readonly init: DocumentServiceInit
  private readonly trust: TrustService
  private readonly logger: ComponentLogger
  private readonly log: Logger
  private opening?: Promise<OpenDocuments>
  private opened?: OpenDocuments
  private stopped = false
  private readonly openListeners: Array<(docs: OpenDocuments) => void> = []
  private readonly noticeListeners = new Set<(peer: string, doc: DocumentId, code: string) => void>()
  private readonly changed = new Set<DocumentId>()
  /** trust decisions per peer device, forgotten on any new statement */
  private readonly trusted = new LRUCache<string, boolean>({ max: MAY_WRITE_CACHE, ttl: MAY_WRITE_TTL_MS })
  private readonly agents = new LRUCache<string, { agent: string | undefined }>({ max: MAY_WRITE_CACHE, ttl: MAY_WRITE_TTL_MS })
  private compactTimer?: ReturnType<typeof setInterval>
  private compacting = false
  compactions = 0

  constructor (init: DocumentServiceInit, components: DocumentServiceComponents) {
    this.init = init
    this.trust = components.trust
    this.logger = components.logger
    this.log = components.logger.forComponent('hearth:docs')
    this.trust.graph.onStatement(() => { this.trusted.clear(); this.agents.clear() })
  }

  get path (): string { return join(this.init.dataDir, FILES.docsDb) }

  /** the open store and engine, or undefined while nothing needed them */
  get loaded (): OpenDocuments | undefined { return this.opened }

  async start (): Promise<void> {
    if (existsSync(this.path)) await this.open()
  }

  /** Opens the store and engine once; every caller gets the same ones. */
  async open (): Promise<OpenDocuments> {
    if (this.stopped) throw new Error('the document service is stopped')
    this.opening ??= this.doOpen().catch(err => { this.opening = undefined; throw err })
    return await this.opening
  }

  /** called once the store is open (at once if it already is) */
  onOpen (listener: (docs: OpenDocuments) => void): void {
    if (this.opened != null) listener(this.opened)
    else this.openListeners.push(listener)
  }

  /** a peer's doc-error about a document (how a read-through learns a peer lacks it); returns unsubscribe */
  onNotice (listener: (peer: string, doc: DocumentId, code: string) => void): () => void {
    this.noticeListeners.add(listener)
    return () => { this.noticeListeners.delete(listener) }
  }

  private async doOpen (): Promise<OpenDocuments> {
    const started = Date.now()
    const lib = await import('@hearth/sync')
    const verifier = lib.createEd25519Verifier({ mayWrite: this.cachedMayWrite() })
    const store = lib.createDocumentStore({ path: this.path }, { signer: lib.createDeviceSigner(this.init.deviceKey), verifier, logger: this.logger })
    const engine = lib.createSyncEngine({}, {
      store,
      verifier,
      logger: this.logger,
      acceptOffer: peer => this.trusts(peer),
      onNotice: (peer, doc, code) => { for (const l of this.noticeListeners) l(peer, doc, code) }
    })
    engine.start()
    store.onHeads(ev => { this.changed.add(ev.id) })
    this.compactTimer = setInterval(() => { void this.compactChanged() }, this.init.compactIntervalMs ?? COMPACT_INTERVAL_MS)
    this.compactTimer.unref?.()
    const docs = { lib, store, engine, verifier }
    if (this.stopped) {
      engine.stop()
      store.close()
      throw new Error('the document service is stopped')
    }
    this.opened = docs
    this.log.info({ documents: store.stats().documents, ms: Date.now() - started }, 'document store open')
    for (const l of this.openListeners.splice(0)) {
      try { l(docs) } catch (err: any) { this.log.warn({ err: err?.message }, 'document store listener failed') }
    }
    return docs
  }

  /**
   * The trust graph's write decision, remembered for a few seconds: an
   * initial sync asks it for every change and header of thousands of
   * documents, and each answer is several SQLite queries. Any new statement
   * (a revocation among them) forgets every answer at once.
   */
  private cachedMayWrite (): (device: string, acl: { owner: string, writers: readonly string[] }) => boolean {
    const graph = this.trust.graph
    const answers = new LRUCache<string, boolean>({ max: MAY_WRITE_CACHE, ttl: MAY_WRITE_TTL_MS })
    graph.onStatement(() => { answers.clear() })
    return (device, acl) => {
      const key = `${device}|${acl.owner}|${acl.writers.join(',')}`
      const hit = answers.get(key)
      if (hit !== undefined) return hit
      const may = graph.mayWrite(device, acl)
      answers.set(key, may)
      return may
    }
  }

  /** the agent this node's documents and token act for */
  agent (): string | undefined {
    return this.trust.agentId
  }

  requireAgent (): string {
    const agent = this.trust.agentId
    if (agent == null) throw new NoAgentError('this device acts for no agent yet: run `hearth trust init` (or `hearth trust join` on a new device of an existing agent) first')
    return agent
  }

  /** the agent a peer's device acts for, if it holds a valid certificate */
  agentOf (device: string): string | undefined {
    // asked for every document event of a sync session: remembered like trust decisions
    const hit = this.agents.get(device)
    if (hit !== undefined) return hit.agent
    const agent = this.trust.graph.agentOfDevice(device)?.agent
    this.agents.set(device, { agent })
    return agent
  }

  /**
   * Whether documents offered by this peer device are taken: it acts for
   * this node's agent, or for an agent linked to it by a relationship or a
   * storage grant. Strangers' documents are never stored.
   */
  trusts (device: string): boolean {
    // asked once per offered document: thousands of times in an initial sync
    const hit = this.trusted.get(device)
    if (hit !== undefined) return hit
    const peer = this.agentOf(device)
    const self = this.trust.agentId
    const trusted = peer != null && self != null && agentsLinked(this.trust.graph, self, peer)
    this.trusted.set(device, trusted)
    return trusted
  }

  /**
   * Whether this node offers the document to a peer device on connect: the
   * ACL names the device's agent (owner, writer or reader), or the document
   * is public and the peer is linked to this node's agent.
   */
  shares (device: string, acl: DocumentAcl): boolean {
    const peer = this.agentOf(device)
    return peer != null && sharedWithAgent(acl, peer, () => this.trusts(device))
  }

  /** every stored document this node offers the device */
  sharedWith (device: string): DocumentId[] {
    const docs = this.opened
    const peer = this.agentOf(device)
    if (docs == null || peer == null) return []
    // decided once for the peer, not per document
    const trusted = this.trusts(device)
    const out: DocumentId[] = []
    let after: string | undefined
    for (;;) {
      const page = docs.store.list({ after, limit: 1000 })
      for (const id of page) {
        try {
          if (sharedWithAgent(docs.store.acl(id), peer, () => trusted)) out.push(id)
        } catch {
          // deleted or unreadable meanwhile: skip it
        }
      }
      if (page.length < 1000) return out
      after = page[page.length - 1]
    }
  }

  private async compactChanged (): Promise<void> {
    const docs = this.opened
    if (docs == null || this.compacting || this.changed.size === 0) return
    this.compacting = true
    try {
      let done = 0
      for (const id of [...this.changed]) {
        if (this.stopped || done >= COMPACT_PER_PASS) break
        this.changed.delete(id)
        try {
          if (docs.store.info(id).pending_changes < (this.init.compactAfter ?? COMPACT_AFTER)) continue
          const r = await docs.store.compact(id)
          if (r.compacted) { this.compactions++; done++ }
        } catch (err: any) {
          if (this.stopped) break
          this.log.warn({ doc: id, code: err?.code, err: err?.message }, 'compaction failed')
        }
      }
    } finally {
      this.compacting = false
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.compactTimer != null) clearInterval(this.compactTimer)
    const docs = this.opened ?? await this.opening?.catch(() => undefined)
    this.opened = undefined
    if (docs == null) return
    docs.engine.stop()
    // a compaction in flight finishes its transaction before the store closes
    for (let i = 0; this.compacting && i < 100; i++) await new Promise(resolve => setTimeout(resolve, 10))
    docs.store.close()
  }
}
