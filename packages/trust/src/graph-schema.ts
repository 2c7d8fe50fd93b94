import type Database from 'better-sqlite3'

/**
 * SQLite layout of the trust graph. `statements` keeps every accepted
 * statement's wire bytes plus the columns queries filter on. Three columns
 * are derived from the key chains and recomputed whenever a rotation arrives:
 * `issuer_agent` (the agent of the issuing key), `subject_agent` (the agent
 * of a relationship's subject or a grant's grantee) and `key_ok` (0 when the
 * statement was issued by its key after that key was rotated away).
 */
export const SCHEMA_VERSION = 1

const DDL = `
CREATE TABLE IF NOT EXISTS statements (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  issuer_key TEXT NOT NULL,
  issuer_agent TEXT NOT NULL,
  key_ok INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  expires_at INTEGER,
  subject TEXT NOT NULL,
  subject_agent TEXT,
  kind TEXT,
  quota INTEGER,
  labels TEXT,
  name TEXT,
  bytes BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS statements_type_subject ON statements (type, subject);
CREATE INDEX IF NOT EXISTS statements_type_issuer ON statements (type, issuer_agent);
CREATE INDEX IF NOT EXISTS statements_type_subject_agent ON statements (type, subject_agent);
CREATE INDEX IF NOT EXISTS statements_issuer_key ON statements (issuer_key);
CREATE TABLE IF NOT EXISTS keys (
  key TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  rotated_at INTEGER,
  rotation_out TEXT,
  rotation_in TEXT
);
CREATE INDEX IF NOT EXISTS keys_agent ON keys (agent);
`

export function openSchema (db: Database.Database): void {
  db.pragma('journal_mode = WAL')
  // Trust statements are few and small; every acknowledged add is durable.
  db.pragma('synchronous = FULL')
  db.pragma('busy_timeout = 5000')
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) throw new Error(`trust graph schema ${version} is newer than this library (${SCHEMA_VERSION})`)
  db.exec(DDL)
  if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`)
}

// Queries name their index (INDEXED BY): without statistics SQLite's planner
// cannot tell that `subject` is far more selective than `issuer_agent`, and
// picked plans that scan every revocation of an agent or every certificate.

/**
 * SQL condition: statement `s` is valid at `@now` — not issued by a
 * rotated-away key, not expired, not revoked by id by its own agent.
 */
export function validSql (s: string): string {
  return `${s}.key_ok = 1 AND (${s}.expires_at IS NULL OR ${s}.expires_at > @now) AND NOT EXISTS (
    SELECT 1 FROM statements rv INDEXED BY statements_type_subject WHERE rv.type = 'revocation' AND rv.subject = ${s}.id
      AND rv.issuer_agent = ${s}.issuer_agent AND rv.key_ok = 1)`
}

/** SQL condition: device certificate `s` is valid, and no device revocation of its agent covers it. */
export function validCertSql (s: string): string {
  return `${validSql(s)} AND NOT EXISTS (
    SELECT 1 FROM statements dr INDEXED BY statements_type_subject WHERE dr.type = 'device-revocation' AND dr.subject = ${s}.subject
      AND dr.issuer_agent = ${s}.issuer_agent AND dr.key_ok = 1 AND dr.issued_at >= ${s}.issued_at)`
}

/**
 * SQL condition: statement `s` counts now. Certificates, relationships and
 * grants must be valid; revocations and rotations count unless issued by a
 * rotated-away key. This is also what the graph hands to peers.
 */
export function countsSql (s: string): string {
  return `(${s}.type IN ('revocation', 'device-revocation', 'key-rotation') AND ${s}.key_ok = 1
    OR ${s}.type = 'device-cert' AND ${validCertSql(s)}
    OR ${s}.type IN ('relationship', 'storage-grant') AND ${validSql(s)})`
}
