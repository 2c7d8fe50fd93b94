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

/** An API token as node.db keeps it: the secret only as its SHA-256 */
export interface StoredToken {
  id: string
  name: string
  scope: string
  secretHash: string
  createdAt: number
  lastUsedAt?: number
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
      CREATE TABLE IF NOT EXISTS invites (
        secret_hash TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE IF NOT EXISTS pin_sets (
        device TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        seq INTEGER NOT NULL,
        bytes BLOB NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS pin_sets_agent ON pin_sets (agent);
      CREATE TABLE IF NOT EXISTS api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
      ) STRICT;
      CREATE TABLE IF NOT EXISTS peer_cursors (
        peer_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        PRIMARY KEY (peer_id, stream)
      ) STRICT;
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

  /** Stores a pairing invitation by the hash of its secret. */
  addInvite (secretHash: string, expiresAt: number, now = Date.now()): void {
    this.db.prepare('DELETE FROM invites WHERE expires_at < ?').run(now)
    this.db.prepare('INSERT INTO invites (secret_hash, expires_at, created_at) VALUES (?, ?, ?)').run(secretHash, expiresAt, now)
  }

  /** Whether an invitation made here is still waiting to be used */
  hasOpenInvite (now = Date.now()): boolean {
    return this.db.prepare('SELECT 1 FROM invites WHERE expires_at > ? LIMIT 1').get(now) != null
  }

  /** Uses an invitation up: true once, for an unexpired one, false ever after. */
  consumeInvite (secretHash: string, now = Date.now()): boolean {
    const row = this.db.prepare('DELETE FROM invites WHERE secret_hash = ? RETURNING expires_at').get(secretHash) as { expires_at: number } | undefined
    return row != null && row.expires_at > now
  }

  /** How far we have read another peer's stream of something (its own sequence numbers). */
  getCursor (peerId: string, stream: string): number {
    const row = this.db.prepare('SELECT cursor FROM peer_cursors WHERE peer_id = ? AND stream = ?').get(peerId, stream) as { cursor: number } | undefined
    return row?.cursor ?? 0
  }

  setCursor (peerId: string, stream: string, cursor: number): void {
    this.db.prepare(`INSERT INTO peer_cursors (peer_id, stream, cursor) VALUES (?, ?, ?)
      ON CONFLICT (peer_id, stream) DO UPDATE SET cursor = excluded.cursor`).run(peerId, stream, cursor)
  }

  /** Keeps a verified pin set if it is newer than the one held for its device; true if kept. */
  putPinSet (device: string, agent: string, seq: number, bytes: Uint8Array): boolean {
    const r = this.db.prepare(`INSERT INTO pin_sets (device, agent, seq, bytes) VALUES (?, ?, ?, ?)
      ON CONFLICT (device) DO UPDATE SET agent = excluded.agent, seq = excluded.seq, bytes = excluded.bytes WHERE excluded.seq > pin_sets.seq`).run(device, agent, seq, bytes)
    return r.changes > 0
  }

  pinSetsOf (agents: string[]): Array<{ device: string, agent: string, seq: number, bytes: Uint8Array }> {
    if (agents.length === 0) return []
    return this.db.prepare(`SELECT device, agent, seq, bytes FROM pin_sets WHERE agent IN (${agents.map(() => '?').join(',')})`).all(...agents) as any
  }

  addToken (t: StoredToken): void {
    this.db.prepare('INSERT INTO api_tokens (id, name, scope, secret_hash, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, NULL)').run(t.id, t.name, t.scope, t.secretHash, t.createdAt)
  }

  tokens (): StoredToken[] {
    return (this.db.prepare('SELECT id, name, scope, secret_hash, created_at, last_used_at FROM api_tokens ORDER BY created_at, id').all() as any[])
      .map(r => ({ id: r.id, name: r.name, scope: r.scope, secretHash: r.secret_hash, createdAt: r.created_at, lastUsedAt: r.last_used_at ?? undefined }))
  }

  /** true when a token was deleted */
  deleteToken (id: string): boolean {
    return this.db.prepare('DELETE FROM api_tokens WHERE id = ?').run(id).changes > 0
  }

  touchToken (id: string, at: number): void {
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(at, id)
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
