import type Database from 'better-sqlite3'

/**
 * One SQLite file per node. Change signatures live apart from change bytes:
 * compaction folds change bytes into a snapshot and drops them, but a
 * relayed change still needs its author's signature, so signatures are
 * kept for good (about 150 bytes per change).
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS documents (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  acl TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  header_version INTEGER NOT NULL,
  header BLOB NOT NULL,
  header_device TEXT NOT NULL,
  header_sig BLOB NOT NULL,
  heads TEXT NOT NULL DEFAULT '[]',
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY,
  doc TEXT NOT NULL,
  hash TEXT NOT NULL,
  bytes BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (doc, hash)
);
CREATE TABLE IF NOT EXISTS signatures (
  doc TEXT NOT NULL,
  hash TEXT NOT NULL,
  actor TEXT NOT NULL,
  change_seq INTEGER NOT NULL,
  device TEXT NOT NULL,
  kind INTEGER NOT NULL,
  sig BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (doc, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
  doc TEXT PRIMARY KEY,
  heads TEXT NOT NULL,
  bytes BLOB NOT NULL,
  change_count INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_states (
  peer TEXT NOT NULL,
  doc TEXT NOT NULL,
  state BLOB NOT NULL,
  header_version INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (peer, doc)
) WITHOUT ROWID;
`

export function openDatabase (db: Database.Database): void {
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > 1) throw new Error(`document store schema ${version} is newer than this library (1)`)
  db.exec(SCHEMA)
  if (version === 0) db.pragma('user_version = 1')
}
