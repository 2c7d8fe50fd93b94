/** Defaults for every cap and knob of @hearth/sync; each can be overridden in the init objects. */

/** the `schema_version` this library writes into document headers and views */
export const SCHEMA_VERSION = 1
/** the header and view schema versions this library reads */
export const SUPPORTED_SCHEMA_VERSIONS: readonly number[] = [1]

/** largest single Automerge change accepted (after a document chunk is split into changes) */
export const MAX_CHANGE_BYTES = 1024 * 1024
/** largest wire message (envelope) accepted from or sent to a peer */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024
/** most changes one incoming message may carry (a document chunk counts each change it holds) */
export const MAX_CHANGES_PER_MESSAGE = 100_000
/** most documents a peer may subscribe to in one session */
export const MAX_DOCS_PER_SESSION = 100_000
/** most document ids in one subscribe message */
export const MAX_IDS_PER_MESSAGE = 10_000
/** control messages (subscribe, doc errors) waiting for the channel; beyond it notices are dropped */
export const MAX_CONTROL_QUEUE = 1024
/** sync messages handed to a channel and not yet acknowledged (its send promise), per session */
export const MAX_IN_FLIGHT = 32
/** largest document header (JSON) */
export const MAX_HEADER_BYTES = 64 * 1024
/** most writers or readers in an ACL */
export const MAX_ACL_ENTRIES = 1024
/** Automerge documents kept loaded in memory */
export const DOC_CACHE_SIZE = 1000
/** how often dirty per-peer sync states are written to SQLite */
export const SYNC_STATE_FLUSH_MS = 1000
/** public keys kept parsed for signature checks */
export const MAX_VERIFIED_KEYS_CACHE = 4096
