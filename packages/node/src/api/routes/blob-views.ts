import { Type } from '@fastify/type-provider-typebox'
import { LAYERS, PIN_LAYERS } from '@hearth/blobstore'
import type { BlobStat, Layer, Pin, PinLayer } from '@hearth/blobstore'
import type { HearthNode } from '../../node.js'
import { HttpError } from '../error-handler.js'

export const LayerSchema = Type.Unsafe<Layer>({ type: 'string', enum: [...LAYERS] })
export const PinLayerSchema = Type.Unsafe<PinLayer>({ type: 'string', enum: [...PIN_LAYERS] })
export const CidParam = Type.Object({ cid: Type.String({ minLength: 1, maxLength: 256, description: 'a CID (base32 `bafk…`/`bafy…` or any multibase the parser accepts)' }) })
export const OwnerSchema = Type.String({ minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$', description: 'agent id that owns the pin' })

/**
 * The owner a new pin is stored under. A pin without an owner is this
 * device's own (it goes into its pin set's roots, and is copied onto its
 * agent's other devices); one naming this node's own agent is a copy the
 * replication manager keeps for another of its devices, and may let go of.
 * A client naming its own agent means the first.
 */
export function pinOwner (owner: string | undefined, agent: string | undefined): string | undefined {
  return owner != null && owner === agent ? undefined : owner
}

/**
 * A pin for another agent is acknowledged only if this node keeps such pins
 * (its agent granted that one storage in that layer): replication would
 * otherwise let it go at its next pass, and an acknowledged pin must not vanish.
 */
export function requireHeldOwner (node: HearthNode, owner: string | undefined, layer: string): void {
  const replication = node.replication
  if (owner == null || replication == null) return
  if (!(PIN_LAYERS as readonly string[]).includes(layer) || !replication.holdsFor(owner, layer as PinLayer)) {
    throw new HttpError('ERR_OWNER_NOT_HELD', `this node holds nothing for agent ${owner.slice(0, 64)} in ${layer}: its agent has granted that agent no storage there (hearth trust grant), so nothing was stored`)
  }
}

export const PinView = Type.Object({
  cid: Type.String(),
  layer: PinLayerSchema,
  owner: Type.Union([Type.String(), Type.Null()]),
  size: Type.Number(),
  dag_bytes: Type.Number(),
  created_at: Type.String({ format: 'date-time' })
})

export const BlobInfoView = Type.Object({
  schema_version: Type.String(),
  cid: Type.String(),
  size: Type.Number(),
  blocks: Type.Number(),
  dag_bytes: Type.Number(),
  content_type: Type.Union([Type.String(), Type.Null()]),
  layers: Type.Array(LayerSchema),
  pins: Type.Array(PinView),
  quarantined_blocks: Type.Number(),
  created_at: Type.String({ format: 'date-time' }),
  last_access: Type.String({ format: 'date-time' })
})

export function pinView (p: Pin): { cid: string, layer: Pin['layer'], owner: string | null, size: number, dag_bytes: number, created_at: string } {
  return { cid: p.cid.toString(), layer: p.layer, owner: p.owner ?? null, size: p.size, dag_bytes: p.dagBytes, created_at: new Date(p.createdAt).toISOString() }
}

export function blobInfoView (s: BlobStat, schemaVersion: string): any {
  return {
    schema_version: schemaVersion,
    cid: s.cid.toString(),
    size: s.size,
    blocks: s.blocks,
    dag_bytes: s.dagBytes,
    content_type: s.contentType ?? null,
    layers: s.layers,
    pins: s.pins.map(pinView),
    quarantined_blocks: s.quarantinedBlocks,
    created_at: new Date(s.createdAt).toISOString(),
    last_access: new Date(s.lastAccess).toISOString()
  }
}
