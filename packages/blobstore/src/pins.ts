import { deleteRootSync, reserve } from './accounting.js'
import { cidFromKey, cidKey, cidToString, parseCid } from './cids.js'
import { BlobNotFoundError } from './errors.js'
import { checkOwner, checkPinLayer } from './validate.js'
import type { PinLayer } from './constants.js'
import type { StoreContext } from './context.js'
import type { Pin, PinFilter, PinOptions, UnpinOptions } from './index.js'
import type { CID } from 'multiformats/cid'

interface PinRow { cid: Uint8Array, layer: PinLayer, owner: string, created_at: number, size: number, dag_bytes: number }

const PIN_SELECT = 'SELECT r.cid, p.layer, p.owner, p.created_at, r.size, r.dag_bytes FROM pins p JOIN roots r ON r.id = p.root_id'

function toPin (r: PinRow): Pin {
  return { cid: cidFromKey(r.cid), layer: r.layer, ...(r.owner !== '' ? { owner: r.owner } : {}), createdAt: r.created_at, size: r.size, dagBytes: r.dag_bytes }
}

function rootOf (ctx: StoreContext, cid: CID): { id: number, dag_bytes: number } {
  const row = ctx.db.stmt('SELECT id, dag_bytes FROM roots WHERE cid = ?').get(cidKey(cid)) as { id: number, dag_bytes: number } | undefined
  if (row == null) throw new BlobNotFoundError(`Blob ${cidToString(cid)} not found`)
  return row
}

export function pinsOfRoot (ctx: StoreContext, rootId: number): Pin[] {
  return (ctx.db.stmt(`${PIN_SELECT} WHERE p.root_id = ? ORDER BY p.layer, p.owner`).all(rootId) as PinRow[]).map(toPin)
}

/** Pins a blob in a layer (idempotent); charged once per layer, checked against its quota */
export function pinSync (ctx: StoreContext, cid: CID, options: PinOptions): Pin {
  const layer = checkPinLayer(options?.layer)
  const owner = checkOwner(options.owner) ?? ''
  return ctx.db.durableTransaction(() => {
    const row = rootOf(ctx, cid)
    const already = ctx.db.stmt('SELECT 1 FROM pins WHERE root_id = ? AND layer = ? LIMIT 1').get(row.id, layer) != null
    if (!already) reserve(ctx, layer, row.dag_bytes)
    ctx.db.stmt('INSERT OR IGNORE INTO pins (root_id, layer, owner, created_at) VALUES (?, ?, ?, ?)').run(row.id, layer, owner, ctx.now())
    return toPin(ctx.db.stmt(`${PIN_SELECT} WHERE p.root_id = ? AND p.layer = ? AND p.owner = ?`).get(row.id, layer, owner) as PinRow)
  })
}

/** Removes matching pins; a blob left without pins joins the cache as its most recently used entry */
export function unpinSync (ctx: StoreContext, cid: CID, options: UnpinOptions): number {
  const layer = options.layer === undefined ? null : checkPinLayer(options.layer)
  const owner = options.owner === undefined ? null : options.owner === null ? '' : checkOwner(options.owner) ?? null
  return ctx.db.durableTransaction(() => {
    const row = rootOf(ctx, cid)
    const removed = ctx.db.stmt('DELETE FROM pins WHERE root_id = ? AND (? IS NULL OR layer = ?) AND (? IS NULL OR owner = ?)')
      .run(row.id, layer, layer, owner, owner).changes
    if (removed > 0 && ctx.db.stmt('SELECT 1 FROM pins WHERE root_id = ? LIMIT 1').get(row.id) == null) {
      ctx.db.stmt('UPDATE roots SET last_access = ? WHERE id = ?').run(ctx.now(), row.id)
      try {
        reserve(ctx, 'cache', 0)
      } catch {
        // larger than the whole cache quota: it is evicted itself
        deleteRootSync(ctx, row.id)
      }
    }
    return removed
  })
}

export function listPins (ctx: StoreContext, filter: PinFilter): Pin[] {
  const key = filter.cid === undefined ? null : cidKey(parseCid(filter.cid))
  const layer = filter.layer === undefined ? null : checkPinLayer(filter.layer)
  const owner = filter.owner === undefined ? null : checkOwner(filter.owner)
  const rows = ctx.db.stmt(`${PIN_SELECT} WHERE (? IS NULL OR r.cid = ?) AND (? IS NULL OR p.layer = ?) AND (? IS NULL OR p.owner = ?)
    ORDER BY p.created_at, r.cid`).all(key, key, layer, layer, owner, owner) as PinRow[]
  return rows.map(toPin)
}
