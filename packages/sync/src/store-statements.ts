import type Database from 'better-sqlite3'

/** A row of `documents`. */
export interface DocRow {
  id: string
  owner: string
  acl: string
  schema_version: number
  created_at: number
  header_version: number
  header: Uint8Array
  header_device: string
  header_sig: Uint8Array
  heads: string
}

/** The part of a better-sqlite3 statement the store uses (its own name keeps the declarations emittable). */
export interface Stmt<P extends unknown[], R> {
  get: (...params: P) => R | undefined
  all: (...params: P) => R[]
  run: (...params: P) => { changes: number, lastInsertRowid: number | bigint }
}

/** Every statement the store runs, prepared once per connection. */
export function prepareStatements (db: Database.Database) {
  const q = <P extends unknown[] = unknown[], R = unknown>(sql: string): Stmt<P, R> => db.prepare<P, R>(sql) as unknown as Stmt<P, R>
  return {
    getDoc: q<[string], DocRow>('SELECT * FROM documents WHERE id = ?'),
    hasDoc: q<[string], { one: number }>('SELECT 1 AS one FROM documents WHERE id = ?'),
    insertDoc: q('INSERT INTO documents (id, owner, acl, schema_version, created_at, header_version, header, header_device, header_sig, heads, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    updateHeader: q('UPDATE documents SET owner = ?, acl = ?, schema_version = ?, header_version = ?, header = ?, header_device = ?, header_sig = ?, updated_at = ? WHERE id = ?'),
    setHeads: q('UPDATE documents SET heads = ?, updated_at = ? WHERE id = ?'),
    list: q<[string, number], { id: string }>('SELECT id FROM documents WHERE id > ? ORDER BY id LIMIT ?'),
    countDocs: q<[], { n: number }>('SELECT count(*) AS n FROM documents'),
    insertChange: q('INSERT OR IGNORE INTO changes (doc, hash, bytes, received_at) VALUES (?, ?, ?, ?)'),
    insertSig: q('INSERT OR IGNORE INTO signatures (doc, hash, actor, change_seq, device, kind, sig, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    hasSig: q<[string, string], { one: number }>('SELECT 1 AS one FROM signatures WHERE doc = ? AND hash = ?'),
    getSig: q<[string, string], { hash: string, device: string, kind: number, sig: Uint8Array }>('SELECT hash, device, kind, sig FROM signatures WHERE doc = ? AND hash = ?'),
    allSigs: q<[string], { hash: string, device: string, kind: number, sig: Uint8Array }>('SELECT hash, device, kind, sig FROM signatures WHERE doc = ?'),
    countSigs: q<[string], { n: number }>('SELECT count(*) AS n FROM signatures WHERE doc = ?'),
    changesOf: q<[string], { seq: number, hash: string, bytes: Uint8Array }>('SELECT seq, hash, bytes FROM changes WHERE doc = ? ORDER BY seq'),
    changeHashesOf: q<[string], { seq: number, hash: string }>('SELECT seq, hash FROM changes WHERE doc = ?'),
    countChanges: q<[string], { n: number }>('SELECT count(*) AS n FROM changes WHERE doc = ?'),
    deleteChange: q('DELETE FROM changes WHERE seq = ?'),
    getSnapshot: q<[string], { bytes: Uint8Array, change_count: number }>('SELECT bytes, change_count FROM snapshots WHERE doc = ?'),
    putSnapshot: q('INSERT OR REPLACE INTO snapshots (doc, heads, bytes, change_count, created_at) VALUES (?, ?, ?, ?, ?)'),
    getSyncState: q<[string, string], { state: Uint8Array, header_version: number }>('SELECT state, header_version FROM sync_states WHERE peer = ? AND doc = ?'),
    putSyncState: q('INSERT OR REPLACE INTO sync_states (peer, doc, state, header_version, updated_at) VALUES (?, ?, ?, ?, ?)'),
    totals: q<[], { changes: number, signatures: number, snapshots: number }>(
      'SELECT (SELECT count(*) FROM changes) AS changes, (SELECT count(*) FROM signatures) AS signatures, (SELECT count(*) FROM snapshots) AS snapshots')
  }
}

export type Statements = ReturnType<typeof prepareStatements>
