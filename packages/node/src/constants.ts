export const DEFAULT_P2P_PORT = 9876
export const DEFAULT_HTTP_PORT = 7878
export const DEFAULT_HTTP_HOST = '127.0.0.1'
export const DEFAULT_P2P_HOST = '0.0.0.0'
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000
export const DEFAULT_LOG_LEVEL = 'info'

/** The DHT runs under a private prefix so Hearth nodes never join the public IPFS DHT. */
export const DHT_PROTOCOL = '/hearth/kad/1.0.0'
/** mDNS service name, distinct from IPFS's `_p2p._udp.local`. */
export const MDNS_SERVICE_TAG = '_hearth._udp.local'

/** Version of the JSON views the HTTP API returns (`schema_version`, `X-Schema-Version`). */
export const API_SCHEMA_VERSION = '1.0'
/** the view versions a request may ask for with `X-Schema-Version` (a major alone, or a minor no newer) */
export const SUPPORTED_API_SCHEMA_VERSIONS: readonly string[] = [API_SCHEMA_VERSION]

export const MAX_BOOTSTRAP_ADDRS = 64
export const MAX_LABELS = 16
/** JSON request bodies; blob uploads stream and have their own limits. */
export const JSON_BODY_LIMIT = 1024 * 1024

/** Every API answer names the daemon's PeerId, so the CLI can tell one data folder's daemon from another on the same port */
export const PEER_HEADER = 'x-hearth-peer-id'

export const FILES = {
  keysDir: 'keys',
  deviceKey: 'keys/device.key',
  apiToken: 'api-token',
  apiInfo: 'api.json',
  nodeDb: 'node.db',
  blobsDb: 'blobs.db',
  trustDb: 'trust.db',
  docsDb: 'docs.db',
  agentKey: 'keys/agent.key',
  configFile: 'config.json'
} as const
