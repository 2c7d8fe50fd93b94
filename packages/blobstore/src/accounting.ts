import { cidFromKey, cidToString } from './cids.js'
import { QuotaExceededError } from './errors.js'
import { emit } from './context.js'
import type { Layer, PinLayer } from './constants.js'
import type { StoreContext } from './context.js'

/*
 * Usage accounting. A blob's `dag_bytes` (the bytes of its distinct blocks)
 * is charged to every layer that pins it, once per layer however many owners
 * pin it there; an unpinned blob is charged to `cache`. Blocks shared between
 * blobs are charged to each blob, so a layer's use never depends on what other
 * layers hold: it is the sum of the sizes of what was pinned there.
 */

export function usedBytes (ctx: StoreContext, layer: Layer): { bytes: number, roots: number } {
  const row = layer === 'cache'
    ? ctx.db.stmt('SELECT COUNT(*) AS roots, COALESCE(SUM(dag_bytes), 0) AS bytes FROM roots r WHERE NOT EXISTS (SELECT 1 FROM pins p WHERE p.root_id = r.id)').get()
    : ctx.db.stmt('SELECT COUNT(*) AS roots, COALESCE(SUM(dag_bytes), 0) AS bytes FROM roots WHERE id IN (SELECT root_id FROM pins WHERE layer = ?)').get(layer)
  const { roots, bytes } = row as { roots: number, bytes: number }
  return { roots, bytes }
}

export function isPinnedIn (ctx: StoreContext, rootId: number, layer: PinLayer): boolean {
  return ctx.db.stmt('SELECT 1 FROM pins WHERE root_id = ? AND layer = ? LIMIT 1').get(rootId, layer) != null
}

export function isPinned (ctx: StoreContext, rootId: number): boolean {
  return ctx.db.stmt('SELECT 1 FROM pins WHERE root_id = ? LIMIT 1').get(rootId) != null
}

/** Writes buffered last-access times in one transaction */
export function flushTouched (ctx: StoreContext): void {
  if (ctx.touched.size === 0 || !ctx.db.open) return
  const entries = [...ctx.touched]
  ctx.touched.clear()
  ctx.db.transaction(() => {
    const s = ctx.db.stmt('UPDATE roots SET last_access = MAX(last_access, ?) WHERE id = ?')
    for (const [id, at] of entries) s.run(at, id)
  })
}

/** Deletes a blob's row, its memberships and pins; its blocks become garbage */
export function deleteRootSync (ctx: StoreContext, rootId: number): void {
  ctx.db.stmt('DELETE FROM pins WHERE root_id = ?').run(rootId)
  ctx.db.stmt('DELETE FROM root_blocks WHERE root_id = ?').run(rootId)
  ctx.db.stmt('DELETE FROM roots WHERE id = ?').run(rootId)
}

/**
 * Evicts least-recently-used cache blobs until `needed` more bytes fit under
 * the cache quota (blobs being read are skipped). Call inside a transaction.
 * Throws QuotaExceededError when even an empty cache could not make room.
 */
/**
 * What the cache may hold now: its quota, and no more than leaves the file
 * system `cacheMinFreeBytes` free (`room` is free space less that margin,
 * negative when the disk is fuller): on a disk that fills with pinned data
 * the cache gives up its least recently used blobs.
 */
export function cacheLimit (ctx: StoreContext, used: number): number | undefined {
  const quota = ctx.quotas.cache
  const room = ctx.cacheRoom()
  if (room === undefined) return quota
  const bound = Math.max(0, used + room)
  return quota === undefined ? bound : Math.min(quota, bound)
}

export function makeRoomInCache (ctx: StoreContext, needed: number, inflight = true): void {
  let used = usedBytes(ctx, 'cache').bytes + (inflight ? ctx.inflight.get('cache') ?? 0 : 0)
  const quota = cacheLimit(ctx, used)
  if (quota === undefined) return
  if (used + needed <= quota) return
  flushTouched(ctx)
  const evicted: string[] = []
  let freed = 0
  const candidates = ctx.db.stmt(`SELECT id, cid, dag_bytes FROM roots r
    WHERE NOT EXISTS (SELECT 1 FROM pins p WHERE p.root_id = r.id)
    ORDER BY last_access, id`).iterate() as IterableIterator<{ id: number, cid: Uint8Array, dag_bytes: number }>
  const victims: Array<{ id: number, cid: Uint8Array, dag_bytes: number }> = []
  for (const row of candidates) {
    if (used + needed - freed <= quota) break
    if ((ctx.readers.get(row.id) ?? 0) > 0) continue
    victims.push(row)
    freed += row.dag_bytes
  }
  if (used + needed - freed > quota) {
    throw new QuotaExceededError('cache', quota, used, needed)
  }
  for (const v of victims) {
    deleteRootSync(ctx, v.id)
    evicted.push(cidToString(cidFromKey(v.cid)))
  }
  used -= freed
  if (evicted.length > 0) {
    ctx.log.debug({ evicted: evicted.length, bytes: freed }, 'evicted cache blobs')
    emit(ctx, 'cache:evicted', { cids: evicted, bytes: freed })
    ctx.kickGc()
  }
}

/**
 * Checks that `needed` more bytes fit in `layer` (evicting from the cache when
 * the layer is the cache). Call inside a transaction. With `inflight`, bytes
 * that adds into the layer have written but not committed count too: that is
 * the midway check, which bounds the disk used by concurrent adds; a commit
 * or a pin checks committed use only, so that one add's commit is not
 * refused because of another that may yet fail.
 */
export function reserve (ctx: StoreContext, layer: Layer, needed: number, inflight = false): void {
  if (layer === 'cache') {
    makeRoomInCache(ctx, needed, inflight)
    return
  }
  const quota = ctx.quotas[layer]
  if (quota === undefined) return
  const used = usedBytes(ctx, layer).bytes + (inflight ? ctx.inflight.get(layer) ?? 0 : 0)
  if (used + needed > quota) throw new QuotaExceededError(layer, quota, used, needed)
}
