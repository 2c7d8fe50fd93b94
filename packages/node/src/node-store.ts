import Database from 'better-sqlite3'

/**
 * The daemon's own SQLite file (`node.db`): node metadata and an address
 * book of peers seen recently, so a restarted laptop redials its family's
 * server without waiting for mDNS or a bootstrap list.
 */
export interface KnownPeer {
  peerId: string
  addrs: string[]
  lastSeen: number
}

const SCHEMA_VERSION = 1
const MAX_ADDRS_PER_PEER = 16
const MAX_KNOWN_PEERS = 1000

export class NodeStore {
  private readonly db: Database.Database
  private readonly upsert: Database.Statement
  private readonly prune: Database.Statement

  constructor (path: string) {
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('busy_timeout = 5000')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      CREATE TABLE IF NOT EXISTS known_peers (
        peer_id TEXT PRIMARY KEY,
        addrs TEXT NOT NULL,
        last_seen INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS known_peers_last_seen ON known_peers (last_seen);
    `)
    const version = this.getMeta('schema_version')
    if (version == null) {
      this.setMeta('schema_version', String(SCHEMA_VERSION))
      this.setMeta('created_at', new Date().toISOString())
    } else if (Number(version) > SCHEMA_VERSION) {
      throw new Error(`node.db has schema version ${version}, newer than this daemon understands (${SCHEMA_VERSION})`)
    }
    this.upsert = this.db.prepare(`
      INSERT INTO known_peers (peer_id, addrs, last_seen) VALUES (?, ?, ?)
      ON CONFLICT (peer_id) DO UPDATE SET addrs = excluded.addrs, last_seen = excluded.last_seen`)
    this.prune = this.db.prepare(`
      DELETE FROM known_peers WHERE peer_id NOT IN (SELECT peer_id FROM known_peers ORDER BY last_seen DESC LIMIT ${MAX_KNOWN_PEERS})`)
  }

  getMeta (key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined
    return row?.value
  }

  setMeta (key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  rememberPeer (peerId: string, addrs: string[], now = Date.now()): void {
    if (addrs.length === 0) return
    this.upsert.run(peerId, JSON.stringify(addrs.slice(0, MAX_ADDRS_PER_PEER)), now)
    this.prune.run()
  }

  recentPeers (limit: number, since: number): KnownPeer[] {
    const rows = this.db.prepare('SELECT peer_id, addrs, last_seen FROM known_peers WHERE last_seen >= ? ORDER BY last_seen DESC LIMIT ?')
      .all(since, limit) as Array<{ peer_id: string, addrs: string, last_seen: number }>
    return rows.map(r => ({ peerId: r.peer_id, addrs: JSON.parse(r.addrs) as string[], lastSeen: r.last_seen }))
  }

  /** A cheap query that fails if the file is gone or locked; used by /ready. */
  check (): boolean {
    try {
      this.db.prepare('SELECT 1').get()
      return true
    } catch {
      return false
    }
  }

  close (): void {
    if (this.db.open) this.db.close()
  }
}
