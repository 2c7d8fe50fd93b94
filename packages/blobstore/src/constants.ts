/** Size of a raw leaf, and the largest blob that is a single raw block */
export const CHUNK_SIZE = 1024 * 1024

/** Most links in one dag-pb node (balanced layout) */
export const MAX_CHILDREN_PER_NODE = 1024

/** Largest block accepted from anywhere: a 1 MiB leaf or a dag-pb node with 1024 links fits well */
export const MAX_BLOCK_SIZE = 2 * 1024 * 1024

/** Multicodec codes */
export const RAW_CODE = 0x55
export const DAG_PB_CODE = 0x70
export const BLAKE3_CODE = 0x1e
export const SHA2_256_CODE = 0x12

/** An add checks its layer's quota, lets other work run and flushes ahead after each this many bytes */
export const INGEST_BATCH_BYTES = 16 * 1024 * 1024

/** The open write transaction is committed once this much was written in it, even if nothing asked for durability */
export const COMMIT_BYTES = 4 * 1024 * 1024 * 1024

/** …and once writes have paused this long, ms */
export const COMMIT_IDLE_MS = 1_000

/** A background fdatasync of the store's file starts after each this many bytes written (see Database.flushAhead) */
export const FLUSH_AHEAD_BYTES = 32 * 1024 * 1024

/** Blocks deleted per GC transaction; GC yields to the event loop between batches */
export const GC_BATCH_BLOCKS = 32

/** Default interval between background GC runs */
export const GC_INTERVAL_MS = 60_000

/** Default scrub rate */
export const SCRUB_BYTES_PER_SECOND = 16 * 1024 * 1024

/** Pause between scrub passes */
export const SCRUB_PASS_INTERVAL_MS = 60 * 60_000

/** Last-access times are buffered in memory and flushed this often */
export const LRU_FLUSH_INTERVAL_MS = 5_000

export const MAX_CONTENT_TYPE_LENGTH = 255
export const MAX_OWNER_LENGTH = 255
export const MAX_CID_STRING_LENGTH = 256

/** Layers a pin can name, most protected first */
export const PIN_LAYERS = ['sovereign', 'reciprocal', 'invested', 'gift'] as const
export type PinLayer = typeof PIN_LAYERS[number]

/** Every layer, including the unpinned LRU cache */
export const LAYERS = [...PIN_LAYERS, 'cache'] as const
export type Layer = typeof LAYERS[number]
