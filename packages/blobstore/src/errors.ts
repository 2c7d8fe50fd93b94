/**
 * One class per condition. Each has a stable `code` that the HTTP layer maps
 * to a status; tests assert `code` or `name`, never the message.
 */

export class BlobStoreError extends Error {
  readonly code: string
  constructor (message: string, code: string) {
    super(message)
    this.code = code
  }
}

/** A blob (registered root) or a block is not in the store → 404 */
export class BlobNotFoundError extends BlobStoreError {
  static readonly code = 'ERR_BLOB_NOT_FOUND'
  override name = 'BlobNotFoundError'
  constructor (message = 'Blob not found') { super(message, BlobNotFoundError.code) }
}

/** A single block is not in the store → 404 */
export class BlockNotFoundError extends BlobStoreError {
  static readonly code = 'ERR_BLOCK_NOT_FOUND'
  override name = 'BlockNotFoundError'
  constructor (message = 'Block not found') { super(message, BlockNotFoundError.code) }
}

/** A string or value is not a CID this store accepts → 400 */
export class InvalidCidError extends BlobStoreError {
  static readonly code = 'ERR_INVALID_CID'
  override name = 'InvalidCidError'
  constructor (message = 'Invalid CID') { super(message, InvalidCidError.code) }
}

/** The CID uses a codec other than raw or dag-pb → 400 */
export class UnsupportedCodecError extends BlobStoreError {
  static readonly code = 'ERR_UNSUPPORTED_CODEC'
  override name = 'UnsupportedCodecError'
  constructor (message = 'Unsupported codec') { super(message, UnsupportedCodecError.code) }
}

/** The CID uses a hash other than blake3-256 or sha2-256 → 400 */
export class UnsupportedHashError extends BlobStoreError {
  static readonly code = 'ERR_UNSUPPORTED_HASH'
  override name = 'UnsupportedHashError'
  constructor (message = 'Unsupported hash function') { super(message, UnsupportedHashError.code) }
}

/** An add or pin would push a layer past its hard quota → 507 */
export class QuotaExceededError extends BlobStoreError {
  static readonly code = 'ERR_QUOTA_EXCEEDED'
  override name = 'QuotaExceededError'
  readonly layer: string
  readonly quotaBytes: number
  readonly usedBytes: number
  readonly requestedBytes: number
  constructor (layer: string, quotaBytes: number, usedBytes: number, requestedBytes: number) {
    super(`Layer ${layer} quota of ${quotaBytes} bytes exceeded (used ${usedBytes}, needs ${requestedBytes} more)`, QuotaExceededError.code)
    this.layer = layer
    this.quotaBytes = quotaBytes
    this.usedBytes = usedBytes
    this.requestedBytes = requestedBytes
  }
}

/**
 * A byte range lies outside the blob → 416. `size` is the blob's size, so the
 * HTTP layer can answer `Content-Range: bytes *\/size`.
 */
export class RangeNotSatisfiableError extends BlobStoreError {
  static readonly code = 'ERR_RANGE_NOT_SATISFIABLE'
  override name = 'RangeNotSatisfiableError'
  readonly size: number
  constructor (size: number, message = 'Range not satisfiable') {
    super(message, RangeNotSatisfiableError.code)
    this.size = size
  }
}

/** Bytes do not hash to the CID they were offered under → 400 (or drop the peer) */
export class BlockVerificationError extends BlobStoreError {
  static readonly code = 'ERR_BLOCK_VERIFICATION'
  override name = 'BlockVerificationError'
  constructor (message = 'Block bytes do not match their CID') { super(message, BlockVerificationError.code) }
}

/** A block is larger than the store accepts → 413 */
export class BlockTooLargeError extends BlobStoreError {
  static readonly code = 'ERR_BLOCK_TOO_LARGE'
  override name = 'BlockTooLargeError'
  constructor (message = 'Block too large') { super(message, BlockTooLargeError.code) }
}

/**
 * A stored block failed a re-hash (scrub or verified read) and is quarantined:
 * reads of any blob containing it fail instead of returning bad bytes → 500/503.
 * Putting the correct bytes again (e.g. fetched from a peer) heals it.
 */
export class BlockQuarantinedError extends BlobStoreError {
  static readonly code = 'ERR_BLOCK_QUARANTINED'
  override name = 'BlockQuarantinedError'
  readonly cid: string
  constructor (cid: string) {
    super(`Block ${cid} failed verification and is quarantined`, BlockQuarantinedError.code)
    this.cid = cid
  }
}

/** A DAG is structurally invalid (not UnixFS file, sizes disagree) → 422/500 */
export class InvalidDagError extends BlobStoreError {
  static readonly code = 'ERR_INVALID_DAG'
  override name = 'InvalidDagError'
  constructor (message = 'Invalid DAG') { super(message, InvalidDagError.code) }
}

/** A DAG being committed lacks blocks → 409 */
export class IncompleteDagError extends BlobStoreError {
  static readonly code = 'ERR_INCOMPLETE_DAG'
  override name = 'IncompleteDagError'
  readonly missing: string[]
  constructor (missing: string[]) {
    super(`DAG is missing ${missing.length} block(s)`, IncompleteDagError.code)
    this.missing = missing
  }
}

/** A layer name, owner, content type or option is malformed → 400 */
export class InvalidArgumentError extends BlobStoreError {
  static readonly code = 'ERR_INVALID_ARGUMENT'
  override name = 'InvalidArgumentError'
  constructor (message = 'Invalid argument') { super(message, InvalidArgumentError.code) }
}

/** The add was aborted by its signal or its source failed; nothing was kept */
export class AbortError extends BlobStoreError {
  static readonly code = 'ERR_ABORTED'
  override name = 'AbortError'
  constructor (message = 'Aborted') { super(message, AbortError.code) }
}

/** The store is closed (or not yet open) → 503 */
export class StoreClosedError extends BlobStoreError {
  static readonly code = 'ERR_STORE_CLOSED'
  override name = 'StoreClosedError'
  constructor (message = 'Blob store is closed') { super(message, StoreClosedError.code) }
}

/** Another process (or another instance) holds the database → refuse to start */
export class StoreLockedError extends BlobStoreError {
  static readonly code = 'ERR_STORE_LOCKED'
  override name = 'StoreLockedError'
  constructor (message = 'Blob store database is locked by another process') { super(message, StoreLockedError.code) }
}

/** A session (temporary root) was used after it was committed or released */
export class SessionClosedError extends BlobStoreError {
  static readonly code = 'ERR_SESSION_CLOSED'
  override name = 'SessionClosedError'
  constructor (message = 'Session is closed') { super(message, SessionClosedError.code) }
}

/** A block is referenced by a blob or an in-flight session and cannot be deleted directly → 409 */
export class BlockInUseError extends BlobStoreError {
  static readonly code = 'ERR_BLOCK_IN_USE'
  override name = 'BlockInUseError'
  constructor (message = 'Block is referenced and cannot be deleted') { super(message, BlockInUseError.code) }
}

/**
 * The store's open transaction was rolled back under an operation that had
 * written into it (an I/O error, such as a full disk, made SQLite undo it):
 * its writes are gone, so it fails rather than commit a partial result → 503
 */
export class WriteLostError extends BlobStoreError {
  static readonly code = 'ERR_WRITE_LOST'
  override name = 'WriteLostError'
  constructor (message = 'Writes of this operation were rolled back after an I/O error; try again') { super(message, WriteLostError.code) }
}

/**
 * The file system has no room for a write (SQLite's `SQLITE_FULL`, or
 * `ENOSPC`): the write was undone and nothing changed → 507
 */
export class DiskFullError extends BlobStoreError {
  static readonly code = 'ERR_DISK_FULL'
  override name = 'DiskFullError'
  constructor (message = 'The disk is full: free space (unpin, then gc) and try again') { super(message, DiskFullError.code) }
}

/** Whether `err` says the file system ran out of space (whichever layer threw it). */
export function isDiskFull (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT' || code === DiskFullError.code
}

/** A file shrank while it was read: what was read is not one version of it */
export class SourceChangedError extends BlobStoreError {
  static readonly code = 'ERR_SOURCE_CHANGED'
  override name = 'SourceChangedError'
  constructor (message = 'The file changed while it was read') { super(message, SourceChangedError.code) }
}
