import type { Layer } from '@hearth/blobstore'
import type { PeerId } from '@libp2p/interface'

/**
 * `/hearth/blocks/1.0.0`: one request per stream, dag-cbor frames.
 *
 * - `{ type: 'have', root }` → `{ type: 'have', cids, complete, truncated }` (at most MAX_HAVE_LIST CIDs)
 * - `{ type: 'want', root, cids }` (1 to MAX_WANT) → `{ type: 'block', cid, bytes }` for each block
 *   held, `{ type: 'dont-have', cids }` for the rest, then `{ type: 'end' }`
 * - either may be answered `{ type: 'refused' }` when the peer may not read the root
 */
export const BLOCKS_PROTOCOL = '/hearth/blocks/1.0.0'

export const TIMEOUT_MS = 15_000
/** a block is at most 2 MiB; a frame carries one block or one list */
export const FRAME_BYTES = 2 * 1024 * 1024 + 4096
/** CIDs asked for in one want */
export const MAX_WANT = 64
/** a request (`have` or a want list of MAX_WANT CIDs) fits this easily */
export const REQUEST_FRAME_BYTES = 64 * 1024
/** block CIDs listed in one `have` answer */
export const MAX_HAVE_LIST = 16_384
/** concurrent wants to one provider */
export const PER_PEER_IN_FLIGHT = 2
/** blocks asked for in one want by a fetch: with PER_PEER_IN_FLIGHT, what one provider may have in flight */
export const WANT_BATCH = 8
export const DAG_PB = 0x70
export const RAW_CODE = 0x55
/** a root's member set is kept this long for the wants that follow (a fetch sends many) */
export const MEMBERS_TTL_MS = 10_000
export const MEMBERS_CACHED = 16

export class FetchTimeoutError extends Error {
  static readonly code = 'ERR_FETCH_TIMEOUT'
  readonly code = FetchTimeoutError.code
  override readonly name = 'FetchTimeoutError'
}

/** Every provider of a blob is reachable only through a relay whose data limit the blob does not fit in (HEARTH_RELAY_TRANSFERS=limited) */
export class RelayLimitError extends Error {
  static readonly code = 'ERR_RELAY_LIMIT'
  readonly code = RelayLimitError.code
  override readonly name = 'RelayLimitError'
}

export class NoProvidersError extends Error {
  static readonly code = 'ERR_NO_PROVIDERS'
  readonly code = NoProvidersError.code
  override readonly name = 'NoProvidersError'
}

export interface FetchOptions {
  layer?: Layer
  owner?: string
  /** stored with the blob (a read-through keeps the type its provider serves it with) */
  contentType?: string
  signal?: AbortSignal
  /** peers to ask; default: connected peers that speak the protocol, then DHT providers */
  providers?: PeerId[]
  /**
   * The fetch fails with FetchTimeoutError when no block arrived for this
   * long: it bounds a silent peer, not the length of a healthy transfer
   */
  idleTimeoutMs?: number
  /** file bytes received so far, and the file's size once its root arrived */
  onProgress?: (bytes: number, total: number | undefined) => void
  /** the file's size when known beforehand (a pin set says it): decides whether a relayed provider can carry it */
  size?: number
}

/** HEARTH_RELAY_TRANSFERS: whether blocks may travel over a relayed (time- and data-limited) connection */
export type RelayTransfers = 'limited' | 'allow' | 'never'

/**
 * Whether a blob of about `bytes` may come over `conn`. A direct connection
 * carries anything. A relayed one: never with `never`; with `allow`,
 * anything (a transfer the relay cuts goes on over a new circuit or another
 * provider); with `limited`, only what fits in the relay's data limit for
 * the connection, so a large blob waits for a direct connection (a punched
 * one, or another provider) instead of being cut part-way, again and again.
 * An unknown size is let through: the root, once it arrives, tells.
 */
export function relayCarries (mode: RelayTransfers, conn: { limits?: { bytes?: bigint } }, bytes: number | undefined, relayed: boolean): boolean {
  if (!relayed) return true
  if (mode === 'never') return false
  if (mode === 'allow' || bytes == null) return true
  const limit = conn.limits?.bytes
  // a little over the file's size: the DAG's links and the frames around the blocks
  return limit == null || BigInt(Math.ceil(bytes * 1.01) + 64 * 1024) <= limit
}

/** Unfinished downloads kept for a retry to resume; their bytes count toward their layer meanwhile. */
export const RESUMABLE_SESSIONS = 8

export interface BlockExchangeStats {
  blocksSent: number
  blocksReceived: number
  bytesReceived: number
  refused: number
  corrupt: number
}

