import { LAYERS, PIN_LAYERS } from '@hearth/blobstore'
import type { Layer, PinLayer } from '@hearth/blobstore'
import * as p from './parsers.js'
import type { Parser } from './parsers.js'
import {
  DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, DEFAULT_LOG_LEVEL, DEFAULT_P2P_HOST, DEFAULT_P2P_PORT, DEFAULT_SHUTDOWN_TIMEOUT_MS
} from '../constants.js'

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** The daemon's validated configuration. */
export interface HearthConfig {
  dataDir: string
  enableP2p: boolean
  p2pHost: string
  p2pPort: number
  /** WebSocket listener; undefined means P2P_PORT + 1 (or a free port when P2P_PORT is 0) */
  p2pWsPort: number | undefined
  disableMdns: boolean
  httpHost: string
  httpPort: number
  bootstrap: string[]
  /** a DNS name whose A/AAAA records are dialled on P2P_PORT */
  bootstrapDns: string | undefined
  bootstrapDnsIntervalMs: number
  /** resolvers for bootstrapDns; the system's when empty */
  dnsServers: string[]
  labels: Record<string, string>
  /** hard quota per storage layer, bytes; a missing layer is unlimited */
  quotas: Partial<Record<Layer, number>>
  /** bytes kept back in a reserve file, released when the disk fills so that unpinning and gc can run; the cache also leaves this much free */
  diskReserve: number
  /** bytes all peers' partially received frames may take together (strangers get a sixteenth) */
  p2pInboundBudget: number
  /** connections peers with no link to this node's agent may hold together */
  p2pMaxStrangers: number
  /** such connections from one IP address (twice as many from one /24 or /48) */
  p2pStrangersPerIp: number
  /** a stranger's connection with no Hearth stream is closed after this long, ms */
  p2pStrangerIdleMs: number
  /** run a circuit relay server for linked and bootstrap peers */
  relay: boolean
  relayMaxReservations: number
  /** one relayed connection's time and data limits */
  relayDurationMs: number
  relayDataBytes: number
  /** reserve a slot on a linked or bootstrap relay and listen through it */
  /** auto: listen through a relay once this node finds itself behind a router; always; never */
  relayReserve: 'auto' | 'always' | 'never'
  /** turn relayed connections into direct ones by TCP hole punching */
  holePunch: boolean
  /** whether blocks may travel over relayed connections (within the relay's limits) */
  relayTransfers: 'limited' | 'allow' | 'never'
  /** how long a GET of a blob this node lacks may wait for peers, ms */
  fetchTimeoutMs: number
  replicationIntervalMs: number
  /** how often every connected peer is pulled from again for trust statements (a lost push is made good), ms */
  trustPullIntervalMs: number
  /** how often each holder is challenged to prove it still holds a root, ms */
  proofIntervalMs: number
  /** bytes a second the background scrub re-hashes stored blocks at */
  scrubRate: number
  /** pause between two scrub passes over every block, ms; 0 turns the scrub off */
  scrubIntervalMs: number
  /** copies of each pinned root wanted on other nodes (this agent's other devices first, then granting agents' nodes), per layer */
  replicationTargets: Record<PinLayer, number>
  /** hold copies of the roots this agent's other devices pinned */
  holdOwn: boolean
  /** on a first start with no agent, create one for this device (false: a device meant to join another's) */
  autoAgent: boolean
  /** undefined: a token is generated into the data folder */
  apiToken: string | undefined
  /** whether reads need no token; undefined: only when the API is bound to loopback */
  openReads: boolean | undefined
  /** web origins allowed to call the API from a browser (CORS) */
  corsOrigins: string[]
  /** writes one client (token, or address without one) may make per minute */
  httpWriteRate: number
  logLevel: LogLevel
  shutdownTimeoutMs: number
  /** the config file that was read, if any */
  configFile: string | undefined
}

export interface OptionSpec<K extends keyof HearthConfig = keyof HearthConfig> {
  key: K
  /** long flag without dashes; boolean options take no value */
  flag: string
  env: string
  /** key in the JSON config file */
  file: string
  boolean?: { negate: boolean }
  parse: Parser<HearthConfig[K]>
  /** shown in --help and the README */
  default: string
  description: string
}

function opt<K extends keyof HearthConfig> (spec: OptionSpec<K>): OptionSpec<K> { return spec }

/**
 * Every setting once: its flag, variable and file key, parser and default.
 * The loader, `--help` and the README's table all come from this list. The
 * data folder itself (`--data` / `HEARTH_DATA`) is resolved first, since the
 * default config file lives in it.
 */
export const OPTIONS: OptionSpec[] = [
  opt({ key: 'enableP2p', flag: 'no-p2p', env: 'ENABLE_P2P', file: 'enable_p2p', boolean: { negate: true }, parse: p.bool, default: 'true', description: 'run the libp2p host; false runs local-only' }),
  opt({ key: 'p2pHost', flag: 'p2p-host', env: 'HEARTH_P2P_HOST', file: 'p2p_host', parse: p.host, default: DEFAULT_P2P_HOST, description: 'address the libp2p listeners bind to' }),
  opt({ key: 'p2pPort', flag: 'p2p-port', env: 'P2P_PORT', file: 'p2p_port', parse: p.port, default: String(DEFAULT_P2P_PORT), description: 'libp2p TCP port; 0 picks a free port' }),
  opt({ key: 'p2pWsPort', flag: 'p2p-ws-port', env: 'HEARTH_P2P_WS_PORT', file: 'p2p_ws_port', parse: p.port, default: 'P2P_PORT+1', description: 'libp2p WebSocket port; 0 picks a free port' }),
  opt({ key: 'disableMdns', flag: 'disable-mdns', env: 'DISABLE_MDNS', file: 'disable_mdns', boolean: { negate: false }, parse: p.bool, default: 'false', description: 'do not discover peers on the LAN by mDNS' }),
  opt({ key: 'httpHost', flag: 'http-host', env: 'HEARTH_HTTP_HOST', file: 'http_host', parse: p.host, default: DEFAULT_HTTP_HOST, description: 'address the HTTP API binds to' }),
  opt({ key: 'httpPort', flag: 'http-port', env: 'HEARTH_HTTP_PORT', file: 'http_port', parse: p.port, default: String(DEFAULT_HTTP_PORT), description: 'HTTP API port; 0 picks a free port' }),
  opt({ key: 'bootstrap', flag: 'bootstrap', env: 'HEARTH_BOOTSTRAP', file: 'bootstrap', parse: p.multiaddrList, default: '(none)', description: 'comma-separated multiaddrs dialled at start and redialled when lost' }),
  opt({ key: 'bootstrapDns', flag: 'bootstrap-dns', env: 'HEARTH_BOOTSTRAP_DNS', file: 'bootstrap_dns', parse: p.optional(p.host), default: '(none)', description: 'DNS name (e.g. a headless service) whose A/AAAA records are dialled on P2P_PORT' }),
  opt({ key: 'bootstrapDnsIntervalMs', flag: 'bootstrap-dns-interval', env: 'HEARTH_BOOTSTRAP_DNS_INTERVAL_MS', file: 'bootstrap_dns_interval_ms', parse: p.int(1000, 3_600_000), default: '30000', description: 'how often HEARTH_BOOTSTRAP_DNS is resolved again, ms' }),
  opt({ key: 'dnsServers', flag: 'dns-servers', env: 'HEARTH_DNS_SERVERS', file: 'dns_servers', parse: p.dnsServers, default: '(system)', description: 'comma-separated DNS servers (ip or ip:port) for HEARTH_BOOTSTRAP_DNS' }),
  opt({ key: 'labels', flag: 'labels', env: 'HEARTH_LABELS', file: 'labels', parse: p.labels, default: '(none)', description: 'failure-domain labels, e.g. region=eu,cluster=smith,rack=home' }),
  opt({ key: 'quotas', flag: 'quotas', env: 'HEARTH_QUOTAS', file: 'quotas', parse: (raw, key) => ({ ...DEFAULT_QUOTAS, ...p.sizesByName(LAYERS)(raw, key) }), default: 'cache=1GiB', description: `hard quota per layer (${LAYERS.join(', ')}), e.g. reciprocal=20GiB,gift=5GiB; others unlimited` }),
  opt({ key: 'diskReserve', flag: 'disk-reserve', env: 'HEARTH_DISK_RESERVE', file: 'disk_reserve', parse: p.parseSize, default: '16MiB', description: 'space held back in $HEARTH_DATA/reserve: released when the disk fills so that unpin and gc still work (writes answer 507 until space is free again); the cache also leaves this much free; 0 turns the reserve off' }),
  opt({ key: 'p2pInboundBudget', flag: 'p2p-inbound-budget', env: 'HEARTH_P2P_INBOUND_BUDGET', file: 'p2p_inbound_budget', parse: p.sizeBetween(4 * 1024 * 1024, 4 * 1024 * 1024 * 1024), default: '64MiB', description: 'memory that all peers\' partly received frames may take together; a frame that does not fit is refused (peers with no link to this agent get a sixteenth, 256 KiB each)' }),
  opt({ key: 'p2pMaxStrangers', flag: 'p2p-max-strangers', env: 'HEARTH_P2P_MAX_STRANGERS', file: 'p2p_max_strangers', parse: p.int(0, 10_000), default: '64', description: 'connections that peers with no link to this agent (not a bootstrap peer) may hold together; linked peers are never counted' }),
  opt({ key: 'p2pStrangersPerIp', flag: 'p2p-strangers-per-ip', env: 'HEARTH_P2P_STRANGERS_PER_IP', file: 'p2p_strangers_per_ip', parse: p.int(1, 10_000), default: '16', description: 'such connections from one IP address; twice as many from one /24 or /48' }),
  opt({ key: 'p2pStrangerIdleMs', flag: 'p2p-stranger-idle', env: 'HEARTH_P2P_STRANGER_IDLE_MS', file: 'p2p_stranger_idle_ms', parse: p.int(1000, 86_400_000), default: '60000', description: 'a connection of such a peer with no Hearth stream open is closed after this long, ms' }),
  opt({ key: 'relay', flag: 'relay', env: 'HEARTH_RELAY', file: 'relay', boolean: { negate: false }, parse: p.bool, default: 'false', description: 'relay circuits (circuit relay v2) for devices behind routers: reservations only for linked and bootstrap peers, circuits never for strangers' }),
  opt({ key: 'relayMaxReservations', flag: 'relay-max-reservations', env: 'HEARTH_RELAY_MAX_RESERVATIONS', file: 'relay_max_reservations', parse: p.int(1, 1024), default: '32', description: 'relay reservations this relay holds at once' }),
  opt({ key: 'relayDurationMs', flag: 'relay-duration', env: 'HEARTH_RELAY_DURATION_MS', file: 'relay_duration_ms', parse: p.int(1000, 86_400_000), default: '600000', description: 'how long one relayed connection may stay open, ms' }),
  opt({ key: 'relayDataBytes', flag: 'relay-data', env: 'HEARTH_RELAY_DATA', file: 'relay_data', parse: p.sizeBetween(64 * 1024, 64 * 1024 * 1024 * 1024), default: '256MiB', description: 'bytes one relayed connection may carry' }),
  opt({ key: 'relayReserve', flag: 'relay-reserve', env: 'HEARTH_RELAY_RESERVE', file: 'relay_reserve', parse: (raw, key) => { const v = typeof raw === 'boolean' ? String(raw) : raw; return ({ true: 'always', false: 'never' } as Record<string, 'always' | 'never'>)[String(v).trim().toLowerCase()] ?? p.oneOf(['auto', 'always', 'never'] as const)(v, key) }, default: 'auto', description: 'auto: once this node finds it is behind a router (reachability private), reserve a slot on a relay among its linked and bootstrap peers and listen through it; always (true): from the start; never (false)' }),
  opt({ key: 'holePunch', flag: 'no-hole-punch', env: 'HEARTH_HOLE_PUNCH', file: 'hole_punch', boolean: { negate: true }, parse: p.bool, default: 'true', description: 'turn a relayed connection into a direct one by TCP hole punching (works through routers that keep a connection\'s source port; a symmetric NAT stays relayed)' }),
  opt({ key: 'relayTransfers', flag: 'relay-transfers', env: 'HEARTH_RELAY_TRANSFERS', file: 'relay_transfers', parse: p.oneOf(['limited', 'allow', 'never'] as const), default: 'limited', description: 'limited: blocks travel over a relayed connection only for a blob that fits in the relay\'s data limit for it (a larger one waits for a direct connection, or comes from another provider); allow: any blob (a transfer the relay cuts goes on over a new circuit); never: blocks wait for a direct connection. Trust, pin sets, holding proofs and document sync always may' }),
  opt({ key: 'fetchTimeoutMs', flag: 'fetch-timeout', env: 'HEARTH_FETCH_TIMEOUT_MS', file: 'fetch_timeout_ms', parse: p.int(100, 3_600_000), default: '30000', description: 'how long GET /blob of a blob this node lacks waits for peers before 504' }),
  opt({ key: 'replicationIntervalMs', flag: 'replication-interval', env: 'HEARTH_REPLICATION_INTERVAL_MS', file: 'replication_interval_ms', parse: p.int(200, 3_600_000), default: '30000', description: 'how often replication learns pin sets and fetches or lets go of replicas, ms' }),
  opt({ key: 'trustPullIntervalMs', flag: 'trust-pull-interval', env: 'HEARTH_TRUST_PULL_INTERVAL_MS', file: 'trust_pull_interval_ms', parse: p.int(200, 3_600_000), default: '30000', description: 'how often trust statements are pulled again from every connected peer (catches up on any push that was lost), ms' }),
  opt({ key: 'proofIntervalMs', flag: 'proof-interval', env: 'HEARTH_PROOF_INTERVAL_MS', file: 'proof_interval_ms', parse: p.int(500, 86_400_000), default: '600000', description: 'how often each holder of a replica is challenged to prove it still holds it (a random block), ms' }),
  opt({ key: 'scrubRate', flag: 'scrub-rate', env: 'HEARTH_SCRUB_RATE', file: 'scrub_rate', parse: p.sizeBetween(64 * 1024, 16 * 1024 * 1024 * 1024), default: '16MiB', description: 'bytes a second the background scrub re-hashes stored blocks at, to find the ones the disk changed (a bad block is quarantined and fetched again from a peer)' }),
  opt({ key: 'scrubIntervalMs', flag: 'scrub-interval', env: 'HEARTH_SCRUB_INTERVAL_MS', file: 'scrub_interval_ms', parse: p.int(0, 30 * 86_400_000), default: '3600000', description: 'pause between two scrub passes over every stored block, ms (a pass resumes where a restart stopped it); 0 turns the scrub off' }),
  opt({ key: 'replicationTargets', flag: 'replication-targets', env: 'HEARTH_REPLICATION_TARGETS', file: 'replication_targets', parse: (raw, key) => ({ ...DEFAULT_TARGETS, ...p.countsByName(PIN_LAYERS)(raw, key) }), default: 'each layer 2', description: 'copies wanted per layer on other nodes (this agent\'s other devices first, then nodes that granted it storage), spread over failure domains, e.g. sovereign=3,gift=1' }),
  opt({ key: 'autoAgent', flag: 'no-auto-agent', env: 'HEARTH_AUTO_AGENT', file: 'auto_agent', boolean: { negate: true }, parse: p.bool, default: 'true', description: 'on a first start, create a personal agent for this device so documents and /automerge work at once; false for a device that will join another device\'s agent (`hearth init --join`)' }),
  opt({ key: 'holdOwn', flag: 'no-hold-own', env: 'HEARTH_HOLD_OWN', file: 'hold_own', boolean: { negate: true }, parse: p.bool, default: 'true', description: 'hold copies of what this agent\'s other devices pinned; false for a phone or small laptop (a layer\'s quota of 0 declines just that layer)' }),
  opt({ key: 'apiToken', flag: 'api-token', env: 'HEARTH_API_TOKEN', file: 'api_token', parse: p.apiToken, default: '(generated)', description: 'the daemon\'s admin token; generated into the data folder when unset (hearth token create makes scoped ones)' }),
  opt({ key: 'openReads', flag: 'open-reads', env: 'HEARTH_OPEN_READS', file: 'open_reads', parse: p.optional(p.bool), default: '(true on loopback, else false)', description: 'whether GET routes answer without a token; the daemon warns when it serves open reads beyond loopback (/health and /ready are always open)' }),
  opt({ key: 'corsOrigins', flag: 'cors-origins', env: 'HEARTH_CORS_ORIGINS', file: 'cors_origins', parse: p.origins, default: '(none)', description: 'comma-separated web origins (https://app.example) a browser may call the API from; no other origin gets CORS headers' }),
  opt({ key: 'httpWriteRate', flag: 'http-write-rate', env: 'HEARTH_HTTP_WRITE_RATE', file: 'http_write_rate', parse: p.int(1, 1_000_000), default: '6000', description: 'writes per minute one client (its token, or its address) may make before 429 ERR_RATE_LIMITED' }),
  opt({ key: 'logLevel', flag: 'log-level', env: 'HEARTH_LOG_LEVEL', file: 'log_level', parse: p.oneOf(LOG_LEVELS), default: DEFAULT_LOG_LEVEL, description: `one of ${LOG_LEVELS.join(', ')}` }),
  opt({ key: 'shutdownTimeoutMs', flag: 'shutdown-timeout', env: 'HEARTH_SHUTDOWN_TIMEOUT_MS', file: 'shutdown_timeout_ms', parse: p.int(100, 600_000), default: String(DEFAULT_SHUTDOWN_TIMEOUT_MS), description: 'graceful stop bound in ms; a second signal forces' })
]

/** Settings that are not in OPTIONS because they are resolved before the rest. */
export const DATA_OPTION = { flag: 'data', env: 'HEARTH_DATA', file: 'data', description: 'data folder (created 0700)', default: '$XDG_DATA_HOME/hearth' }
export const CONFIG_OPTION = { flag: 'config', env: 'HEARTH_CONFIG', description: 'JSON config file', default: '$HEARTH_DATA/config.json if present' }

/** Variables read by the CLI, not the daemon; accepted so they are not taken for typos. */
export const CLIENT_ENV = ['HEARTH_API_URL']

const DEFAULT_TARGETS: Record<PinLayer, number> = { sovereign: 2, reciprocal: 2, invested: 2, gift: 2 }

/** The unpinned cache is bounded by default so read-through content cannot fill a laptop's disk. */
const DEFAULT_QUOTAS: Partial<Record<Layer, number>> = { cache: 2 ** 30 }

export const DEFAULTS: Omit<HearthConfig, 'dataDir' | 'configFile'> = {
  enableP2p: true,
  p2pHost: DEFAULT_P2P_HOST,
  p2pPort: DEFAULT_P2P_PORT,
  p2pWsPort: undefined,
  disableMdns: false,
  httpHost: DEFAULT_HTTP_HOST,
  httpPort: DEFAULT_HTTP_PORT,
  bootstrap: [],
  bootstrapDns: undefined,
  bootstrapDnsIntervalMs: 30_000,
  dnsServers: [],
  labels: {},
  quotas: DEFAULT_QUOTAS,
  diskReserve: 16 * 1024 * 1024,
  p2pInboundBudget: 64 * 1024 * 1024,
  p2pMaxStrangers: 64,
  p2pStrangersPerIp: 16,
  p2pStrangerIdleMs: 60_000,
  relay: false,
  relayMaxReservations: 32,
  relayDurationMs: 600_000,
  relayDataBytes: 256 * 1024 * 1024,
  relayReserve: 'auto',
  holePunch: true,
  relayTransfers: 'limited',
  fetchTimeoutMs: 30_000,
  replicationIntervalMs: 30_000,
  trustPullIntervalMs: 30_000,
  proofIntervalMs: 600_000,
  scrubRate: 16 * 1024 * 1024,
  scrubIntervalMs: 3_600_000,
  replicationTargets: DEFAULT_TARGETS,
  holdOwn: true,
  autoAgent: true,
  apiToken: undefined,
  openReads: undefined,
  corsOrigins: [],
  httpWriteRate: 6000,
  logLevel: DEFAULT_LOG_LEVEL,
  shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS
}
