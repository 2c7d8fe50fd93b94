import type { DeviceId } from '@hearth/trust'
import * as A from '@automerge/automerge'
import type { DocumentId } from './document-id.js'
import type { DocumentStore, Logger, PeerDocState } from './index.js'

/**
 * One peer's Automerge sync state per document, loaded from the store on
 * first use and written back in batches (`flush`). Automerge persists only
 * a state's shared heads, so a state is written again only when those (or
 * the header version last sent) changed since it was last written.
 */
export class PeerSyncStates {
  private readonly states = new Map<DocumentId, PeerDocState>()
  private readonly dirty = new Set<DocumentId>()
  /** what was last written per document: header version and shared heads */
  private readonly persisted = new Map<DocumentId, string>()

  constructor (private readonly peer: DeviceId, private readonly store: DocumentStore, private readonly log: Logger) {}

  /** The state for `id`; the caller that changes it calls `changed(id)` */
  get (id: DocumentId): PeerDocState {
    let st = this.states.get(id)
    if (st == null) {
      st = this.store.loadSyncState(this.peer, id)
      this.states.set(id, st)
      this.persisted.set(id, persistedKey(st))
    }
    return st
  }

  set (id: DocumentId, st: PeerDocState): void {
    this.states.set(id, st)
    this.dirty.add(id)
  }

  changed (id: DocumentId): void {
    this.dirty.add(id)
  }

  /** Starts the document's sync over, if it was under way (the peer may lack what we assumed it has) */
  restart (id: DocumentId): void {
    if (this.states.has(id)) this.states.set(id, { state: A.initSyncState(), headerVersion: 0 })
  }

  /** Writes the states changed since the last flush */
  flush (): void {
    if (this.dirty.size === 0) return
    const entries: Array<[DocumentId, PeerDocState]> = []
    for (const id of this.dirty) {
      const st = this.states.get(id)
      if (st == null) continue
      const key = persistedKey(st)
      if (this.persisted.get(id) === key) continue
      this.persisted.set(id, key)
      entries.push([id, st])
    }
    this.dirty.clear()
    try {
      this.store.saveSyncStates(this.peer, entries)
    } catch (err: any) {
      this.log.warn({ peer: this.peer, code: err?.code }, 'could not persist sync states')
    }
  }
}

function persistedKey (st: PeerDocState): string {
  return `${st.headerVersion}:${st.state.sharedHeads.join(',')}`
}
