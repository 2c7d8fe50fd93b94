/**
 * The store is one SQLite file so that blocks, roots, pins and temporary roots
 * change together in one transaction. `refs` on each block counts the rows in
 * `root_blocks` and `temp_blocks` that reference it (kept by triggers); a
 * block with `refs = 0` is garbage.
 *
 * A block's bytes live in `block_data`, apart from its small `blocks` row:
 * SQLite rewrites a whole record (overflow pages included) on any UPDATE, so
 * with the bytes inline every reference-count change rewrote 1 MiB, and
 * ingest ran at a quarter of its speed.
 */
export const SCHEMA_VERSION = 1

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS blocks (
  id INTEGER PRIMARY KEY,
  cid BLOB NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  refs INTEGER NOT NULL DEFAULT 0,
  quarantined_at INTEGER
);

CREATE TABLE IF NOT EXISTS block_data (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_unreferenced ON blocks(id) WHERE refs <= 0;
CREATE INDEX IF NOT EXISTS blocks_quarantined ON blocks(id) WHERE quarantined_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS roots (
  id INTEGER PRIMARY KEY,
  cid BLOB NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  dag_bytes INTEGER NOT NULL,
  blocks INTEGER NOT NULL,
  content_type TEXT,
  created_at INTEGER NOT NULL,
  last_access INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS roots_lru ON roots(last_access);

CREATE TABLE IF NOT EXISTS root_blocks (
  root_id INTEGER NOT NULL,
  block_id INTEGER NOT NULL,
  PRIMARY KEY (root_id, block_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS root_blocks_block ON root_blocks(block_id);

CREATE TABLE IF NOT EXISTS pins (
  root_id INTEGER NOT NULL,
  layer TEXT NOT NULL,
  owner TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  PRIMARY KEY (root_id, layer, owner)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pins_layer ON pins(layer);

CREATE TABLE IF NOT EXISTS temp_roots (
  session TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  pid INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS temp_blocks (
  session TEXT NOT NULL,
  block_id INTEGER NOT NULL,
  PRIMARY KEY (session, block_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS temp_blocks_block ON temp_blocks(block_id);

CREATE TRIGGER IF NOT EXISTS blocks_drop_data AFTER DELETE ON blocks
BEGIN DELETE FROM block_data WHERE id = OLD.id; END;
CREATE TRIGGER IF NOT EXISTS root_blocks_ref AFTER INSERT ON root_blocks
BEGIN UPDATE blocks SET refs = refs + 1 WHERE id = NEW.block_id; END;
CREATE TRIGGER IF NOT EXISTS root_blocks_unref AFTER DELETE ON root_blocks
BEGIN UPDATE blocks SET refs = refs - 1 WHERE id = OLD.block_id; END;
CREATE TRIGGER IF NOT EXISTS temp_blocks_ref AFTER INSERT ON temp_blocks
BEGIN UPDATE blocks SET refs = refs + 1 WHERE id = NEW.block_id; END;
CREATE TRIGGER IF NOT EXISTS temp_blocks_unref AFTER DELETE ON temp_blocks
BEGIN UPDATE blocks SET refs = refs - 1 WHERE id = OLD.block_id; END;
`
