/** Wire size cap of one signed statement (envelope included). */
export const MAX_STATEMENT_BYTES = 16 * 1024

/** How far in the future `issued_at` may lie before a statement is "not yet valid". */
export const DEFAULT_CLOCK_SKEW_MS = 5 * 60 * 1000

/** The statement schema this library writes: [major, minor]. */
export const SCHEMA_MAJOR = 1
export const SCHEMA_MINOR = 0

/** Domain tags are `hearth/v<major>/<type>` followed by a NUL byte. */
export const DOMAIN_PREFIX = `hearth/v${SCHEMA_MAJOR}/`

/** Domain of the new key's proof of possession inside a key rotation. */
export const ROTATION_PROOF_DOMAIN = `${DOMAIN_PREFIX}key-rotation-proof\0`

export const NONCE_BYTES = 16
export const MAX_LABELS = 16
export const MAX_LABEL_KEY_LENGTH = 64
export const MAX_LABEL_VALUE_LENGTH = 256
export const MAX_NAME_LENGTH = 256

/** Page size cap of {@link TrustGraph.statements}. */
export const DEFAULT_STATEMENTS_PAGE = 1000
export const MAX_STATEMENTS_PAGE = 10_000
