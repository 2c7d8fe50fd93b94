import type Database from 'better-sqlite3'

/**
 * Key rotation chains.
 *
 * An agent's id is its first key's id; each rotation moves the agent to a new
 * key. Everything here is a pure function of the stored rotation statements,
 * so every node that holds the same statements derives the same chains,
 * whatever order they arrived in.
 *
 * - A key is rotated away at the time of the earliest rotation it signed
 *   (ties broken by statement id): `rotated_at`. Its statements issued at or
 *   after that time never count — except that earliest rotation itself.
 *   More statements can only make `rotated_at` earlier, which is why
 *   `TrustGraph.add` may refuse such statements outright (ERR_KEY_ROTATED).
 * - That earliest rotation is the key's live rotation. The chain links a live
 *   rotation's old key to its new key, unless the new key already has an
 *   earlier live rotation into it (each key has one predecessor; a second
 *   needs the new key's own proof, so only its holder can cause it) or the
 *   link would close a loop. Links are decided in `(issued_at, id)` order.
 * - A key's agent is the first key of its chain. A key that no rotation
 *   names is its own agent. Statements a new key signed before the rotation
 *   that named it count for the agent too: its proof is its consent.
 */

export interface KeyRow {
  key: string
  agent: string
  rotated_at: number | null
  rotation_out: string | null
  rotation_in: string | null
}

export interface Rotation { id: string, old: string, new: string, at: number }

const before = (a: Rotation, b: Rotation): boolean => a.at < b.at || (a.at === b.at && a.id < b.id)

export function computeKeyChains (rotations: Rotation[]): KeyRow[] {
  const live = new Map<string, Rotation>()
  for (const r of rotations) {
    const held = live.get(r.old)
    if (held == null || before(r, held)) live.set(r.old, r)
  }
  const sorted = [...live.values()].sort((a, b) => before(a, b) ? -1 : before(b, a) ? 1 : 0)
  const prev = new Map<string, Rotation>()
  const rootOf = (key: string): string => {
    let root = key
    for (let p = prev.get(root); p != null; p = prev.get(root)) root = p.old
    return root
  }
  for (const r of sorted) {
    if (r.old === r.new || prev.has(r.new) || rootOf(r.old) === r.new) continue
    prev.set(r.new, r)
  }
  const keys = new Set<string>([...live.keys(), ...prev.keys()])
  return [...keys].map(key => ({
    key,
    agent: rootOf(key),
    rotated_at: live.get(key)?.at ?? null,
    rotation_out: live.get(key)?.id ?? null,
    rotation_in: prev.get(key)?.id ?? null
  }))
}

/**
 * Recomputes the `keys` table and, for the keys whose row changed, the
 * derived statement columns. Runs inside the caller's transaction; the work
 * is proportional to the statements of the affected keys, not the graph.
 */
export function rebuildKeyChains (db: Database.Database): void {
  const rotations = db.prepare(`SELECT id, issuer_key AS old, subject AS new, issued_at AS at FROM statements WHERE type = 'key-rotation'`).all() as Rotation[]
  const before = new Map((db.prepare('SELECT * FROM keys').all() as KeyRow[]).map(r => [r.key, r]))
  const after = computeKeyChains(rotations)
  const changed = new Set<string>(before.keys())
  for (const row of after) {
    const old = before.get(row.key)
    if (old != null && old.agent === row.agent && old.rotated_at === row.rotated_at && old.rotation_out === row.rotation_out && old.rotation_in === row.rotation_in) {
      changed.delete(row.key)
    } else {
      changed.add(row.key)
    }
  }
  db.prepare('DELETE FROM keys').run()
  const insert = db.prepare('INSERT INTO keys (key, agent, rotated_at, rotation_out, rotation_in) VALUES (@key, @agent, @rotated_at, @rotation_out, @rotation_in)')
  for (const row of after) insert.run(row)
  const byIssuer = db.prepare(`UPDATE statements SET
    issuer_agent = COALESCE((SELECT k.agent FROM keys k WHERE k.key = statements.issuer_key), statements.issuer_key),
    key_ok = COALESCE((SELECT k.rotated_at IS NULL OR statements.issued_at < k.rotated_at OR statements.id = k.rotation_out
                       FROM keys k WHERE k.key = statements.issuer_key), 1)
    WHERE issuer_key = ?`)
  const bySubject = db.prepare(`UPDATE statements SET
    subject_agent = COALESCE((SELECT k.agent FROM keys k WHERE k.key = statements.subject), statements.subject)
    WHERE type = ? AND subject = ?`)
  for (const key of changed) {
    byIssuer.run(key)
    bySubject.run('relationship', key)
    bySubject.run('storage-grant', key)
  }
}
