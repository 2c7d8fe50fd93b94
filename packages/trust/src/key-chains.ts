import type Database from 'better-sqlite3'

/**
 * Key rotation chains.
 *
 * An agent's id is its first key's id; each rotation moves the agent to a new
 * key. The chains are a pure function of the stored rotation statements, so
 * every node that holds the same statements derives the same chains,
 * whatever order they arrived in. Rotations are taken in `(issued_at, id)`
 * order and one is accepted when:
 * - its old key has not been rotated yet (a key rotates once: of two
 *   rotations of the same key the earlier wins, the later one was issued by a
 *   rotated-away key), and
 * - it was issued at or after the old key became active, and
 * - its new key belongs to no chain yet (so chains never merge or loop).
 *
 * A key's active window is `[activated_at, rotated_at)`: from the rotation
 * that introduced it (or forever, for a first key) until the rotation away
 * from it. A statement counts only if issued inside its key's window.
 */

export interface KeyRow {
  key: string
  agent: string
  activated_at: number | null
  rotated_at: number | null
  rotation_in: string | null
  rotation_out: string | null
}

interface Rotation { id: string, old: string, new: string, at: number }

export function computeKeyChains (rotations: Rotation[]): KeyRow[] {
  const sorted = [...rotations].sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const next = new Map<string, Rotation>()
  const prev = new Map<string, Rotation>()
  const member = new Set<string>()
  for (const r of sorted) {
    if (r.old === r.new || next.has(r.old) || member.has(r.new)) continue
    const intro = prev.get(r.old)
    if (intro != null && r.at < intro.at) continue
    next.set(r.old, r)
    prev.set(r.new, r)
    member.add(r.old)
    member.add(r.new)
  }
  const rows: KeyRow[] = []
  for (const key of member) {
    let root = key
    for (let p = prev.get(root); p != null; p = prev.get(root)) root = p.old
    rows.push({
      key,
      agent: root,
      activated_at: prev.get(key)?.at ?? null,
      rotated_at: next.get(key)?.at ?? null,
      rotation_in: prev.get(key)?.id ?? null,
      rotation_out: next.get(key)?.id ?? null
    })
  }
  return rows
}

/** Recomputes the `keys` table and the derived statement columns. Runs inside the caller's transaction. */
export function rebuildKeyChains (db: Database.Database): void {
  const rotations = db.prepare(`SELECT id, issuer_key AS old, subject AS new, issued_at AS at FROM statements WHERE type = 'key-rotation'`).all() as Rotation[]
  const rows = computeKeyChains(rotations)
  db.prepare('DELETE FROM keys').run()
  const insert = db.prepare('INSERT INTO keys (key, agent, activated_at, rotated_at, rotation_in, rotation_out) VALUES (@key, @agent, @activated_at, @rotated_at, @rotation_in, @rotation_out)')
  for (const row of rows) insert.run(row)
  db.prepare(`UPDATE statements SET
    issuer_agent = COALESCE((SELECT k.agent FROM keys k WHERE k.key = statements.issuer_key), statements.issuer_key),
    key_ok = COALESCE((SELECT (k.activated_at IS NULL OR statements.issued_at >= k.activated_at)
                          AND (k.rotated_at IS NULL OR statements.issued_at < k.rotated_at)
                       FROM keys k WHERE k.key = statements.issuer_key), 1),
    subject_agent = CASE WHEN statements.type IN ('relationship', 'storage-grant')
      THEN COALESCE((SELECT k.agent FROM keys k WHERE k.key = statements.subject), statements.subject) END`).run()
}
