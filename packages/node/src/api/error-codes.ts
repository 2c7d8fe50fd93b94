/**
 * HTTP status for each stable error code. Library errors carry only a code;
 * this table is the one place that decides how each reaches a client.
 */
export const ERROR_STATUS: Record<string, number> = {
  ERR_VALIDATION: 400,
  ERR_BAD_REQUEST: 400,
  ERR_INVALID_JSON: 400,
  ERR_INVALID_MULTIADDR: 400,
  ERR_INVALID_PEER_ID: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN_HOST: 403,
  // a valid token whose scope does not cover the route
  ERR_FORBIDDEN: 403,
  ERR_TOKEN_NOT_FOUND: 404,
  // a pin for an agent this node keeps nothing for (no grant in that layer)
  ERR_OWNER_NOT_HELD: 409,
  ERR_REQUEST_TIMEOUT: 408,
  ERR_URL_TOO_LONG: 414,
  ERR_RATE_LIMITED: 429,
  ERR_TOO_MANY_TOKENS: 429,
  ERR_HEADERS_TOO_LARGE: 431,
  ERR_NOT_FOUND: 404,
  ERR_PEER_NOT_CONNECTED: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_P2P_DISABLED: 409,
  ERR_BODY_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_DIAL_FAILED: 502,
  ERR_NOT_READY: 503,
  ERR_SHUTTING_DOWN: 503,
  ERR_INTERNAL: 500,
  // the daemon itself cannot work as configured (start-up errors, should one reach a request)
  ERR_INVALID_CONFIG: 503,
  ERR_DAEMON_RUNNING: 503,
  ERR_DATA_DIR: 503,
  ERR_P2P_PORT_IN_USE: 503,
  ERR_STORE_LOCKED: 503,
  ERR_INVALID_KEY_FILE: 503,
  // peer-protocol errors: what a peer sent was malformed
  ERR_PROTOCOL: 400,
  ERR_INVALID_PIN_SET: 400,
  // no peer offers a root (routes answer ERR_BLOB_NOT_FOUND)
  ERR_NO_PROVIDERS: 404,
  // offered only through relays whose limit the blob does not fit in: try again once a direct connection is up
  ERR_RELAY_LIMIT: 503,
  // a download session used after its end; an upload source that changed while read
  ERR_SESSION_CLOSED: 409,
  ERR_SOURCE_CHANGED: 409,
  // documents: a session not subscribed to the document; the per-peer document cap
  ERR_NOT_SUBSCRIBED: 409,
  ERR_TOO_MANY_DOCUMENTS: 429,

  // blob store
  ERR_INVALID_CID: 400,
  ERR_UNSUPPORTED_CODEC: 400,
  ERR_UNSUPPORTED_HASH: 400,
  ERR_INVALID_ARGUMENT: 400,
  ERR_BLOCK_VERIFICATION: 400,
  ERR_ABORTED: 400,
  ERR_UNSUPPORTED_FORMAT: 400,
  ERR_BLOB_NOT_FOUND: 404,
  ERR_BLOCK_NOT_FOUND: 404,
  ERR_PIN_NOT_FOUND: 404,
  ERR_NOT_ACCEPTABLE: 406,
  ERR_INCOMPLETE_DAG: 409,
  ERR_BLOCK_IN_USE: 409,
  ERR_BLOCK_TOO_LARGE: 413,
  ERR_RANGE_NOT_SATISFIABLE: 416,
  ERR_QUOTA_EXCEEDED: 507,
  // the file system has no room: nothing was written (free space: unpin, then gc)
  ERR_DISK_FULL: 507,
  // stored data failed verification: unavailable until a good copy heals it
  ERR_BLOCK_QUARANTINED: 503,
  ERR_INVALID_DAG: 500,
  ERR_STORE_CLOSED: 503,
  // an I/O error rolled back an add's writes before its commit: try again
  ERR_WRITE_LOST: 503,

  // trust
  ERR_MALFORMED_STATEMENT: 400,
  ERR_NON_CANONICAL: 400,
  // a statement, or a request's X-Schema-Version, of a schema version this daemon cannot read or serve
  ERR_UNSUPPORTED_SCHEMA_VERSION: 400,
  ERR_UNKNOWN_STATEMENT_TYPE: 400,
  ERR_STATEMENT_EXPIRED: 400,
  ERR_STATEMENT_NOT_YET_VALID: 400,
  ERR_WRONG_DOMAIN: 400,
  ERR_INVALID_SIGNATURE: 400,
  ERR_KEY_ROTATED: 400,
  ERR_KEY_REVOKED: 400,
  ERR_INVALID_ID: 400,
  ERR_DEVICE_NOT_CERTIFIED: 400,
  ERR_INVALID_INVITATION: 400,
  ERR_INVITATION_REJECTED: 403,
  ERR_AGENT_NOT_FOUND: 404,
  ERR_NO_AGENT_KEY: 409,
  ERR_ALREADY_JOINED: 409,
  ERR_STATEMENT_TOO_LARGE: 413,
  ERR_PAIRING_FAILED: 502,
  ERR_FETCH_TIMEOUT: 504,

  // documents
  ERR_INVALID_DOCUMENT_ID: 400,
  ERR_MALFORMED_MESSAGE: 400,
  ERR_INVALID_HEADER: 400,
  ERR_INVALID_CONTENT: 400,
  ERR_INVALID_PATCH: 400,
  ERR_DOC_NOT_FOUND: 404,
  ERR_ACCESS_DENIED: 403,
  ERR_UNAUTHORIZED_WRITER: 403,
  ERR_DOC_EXISTS: 409,
  ERR_NO_AGENT: 409,
  ERR_CHANGE_TOO_LARGE: 413,
  ERR_MESSAGE_TOO_LARGE: 413,
  ERR_TOO_MANY_STREAMS: 429,
  ERR_CLOSED: 503
}

/** Fastify's own error codes, renamed into ours. */
export const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ERR_INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'ERR_INVALID_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ERR_BAD_REQUEST',
  FST_ERR_VALIDATION: 'ERR_VALIDATION'
}
