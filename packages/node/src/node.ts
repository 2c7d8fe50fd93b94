import { access, chmod, constants, mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { libp2pPrivateKey } from './identity.js'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { DiskGuard } from './disk.js'
import { createBlobStore } from '@hearth/blobstore'
import type { BlobStore } from '@hearth/blobstore'
import { loadOrCreateKeyFile } from '@hearth/trust'
import type { ComponentLogger, KeyPair, Logger } from '@hearth/trust'
import { wsPort } from './config/load.js'
import type { HearthConfig } from './config/spec.js'
import { API_SCHEMA_VERSION, FILES } from './constants.js'
import { DataDirError, DialFailedError, InvalidMultiaddrError, InvalidPeerIdError, P2PDisabledError, P2pPortInUseError, PeerNotConnectedError } from './errors.js'
import { NodeStore } from './node-store.js'
import { BootstrapDialer } from './p2p/bootstrap-dialer.js'
import { DnsBootstrap } from './p2p/dns-bootstrap.js'
import { watchDhtJunk } from './p2p/dht-guard.js'
import { RelayKeeper } from './p2p/relay-keeper.js'
import { ReachabilityTracker } from './p2p/reachability.js'
import { HolePuncher } from './p2p/hole-punch.js'
import { redialKnownPeers, watchPeers } from './p2p/peer-events.js'
import { createHost } from './p2p/host.js'
import { PenaltyBox } from './p2p/penalty-box.js'
import { PeerPolicy } from './p2p/peer-policy.js'
import { ApiTokens } from './api/tokens.js'
import type { PeerPolicyStats } from './p2p/peer-policy.js'
import { PAIR_PROTOCOL, TrustExchange } from './trust/exchange.js'
import { BlockExchange } from './blocks/exchange.js'
import { ReplicationManager } from './replication/manager.js'
import { TrustService } from './trust/service.js'
import { DocumentService } from './docs/service.js'
import { SYNC_KEEP_ALIVE_TAG, SyncProtocol } from './docs/protocol.js'
import type { HearthHost } from './p2p/host.js'
import { peerViews, relayStatus, replicationSummary, syncStatusOf } from './status.js'
import type { P2PStatus, Readiness, SyncStatus } from './status.js'

export interface HearthNodeComponents {
  logger: ComponentLogger
}

export type { P2PStatus, PeerView, Readiness, SyncStatus } from './status.js'

/**
 * The daemon's services, started in order and stopped in reverse: the data
 * folder and device identity, the node's own store, the libp2p host and the
 * bootstrap dialer. The HTTP API is built over it elsewhere (`buildApi`).
 */
export class HearthNode {
  readonly config: HearthConfig
  readonly startedAt = new Date()
  readonly logger: ComponentLogger
  private readonly log: Logger
  private state: 'stopped' | 'starting' | 'started' | 'stopping' = 'stopped'
  private _peerId?: PeerId
  private _store?: NodeStore
  private _blobs?: BlobStore
  private _trust?: TrustService
  private _exchange?: TrustExchange
  private _blocks?: BlockExchange
  private _replication?: ReplicationManager
  private _docs?: DocumentService
  private _sync?: SyncProtocol
  private relayKeeper?: RelayKeeper
  private reach?: ReachabilityTracker
  private puncher?: HolePuncher
  /** automerge-repo WebSocket clients, counted by the endpoint */
  wsClients = 0
  readonly penalty = new PenaltyBox()
  private _policy?: PeerPolicy
  private blobsOpen = false
  private _host?: HearthHost
  private bootstrap?: BootstrapDialer
  private dnsBootstrap?: DnsBootstrap
  private apiToken?: string
  private _tokens?: ApiTokens
  /** the data folder's free space, and the full-disk state (see {@link DiskGuard}); set at start */
  disk?: DiskGuard
  private readonly latency = new Map<string, number>()

  constructor (config: HearthConfig, components: HearthNodeComponents) {
    this.config = config
    this.logger = components.logger
    this.log = components.logger.forComponent('hearth:node')
  }

  get peerId (): PeerId {
    if (this._peerId == null) throw new Error('node not started')
    return this._peerId
  }

  get host (): HearthHost | undefined { return this._host }

  get trust (): TrustService {
    if (this._trust == null) throw new Error('node not started')
    return this._trust
  }

  /** Replication along grants; undefined when p2p is off. */
  get replication (): ReplicationManager | undefined { return this._replication }

  /** Block exchange with peers; undefined when p2p is off. */
  get blockExchange (): BlockExchange | undefined { return this._blocks }

  /** The libp2p side of trust (exchange and pairing); undefined when p2p is off. */
  get trustExchange (): TrustExchange | undefined { return this._exchange }

  /** Automerge documents (opened on first use); see {@link DocumentService} */
  get docs (): DocumentService {
    if (this._docs == null) throw new Error('node not started')
    return this._docs
  }

  /** Document sync with peers; undefined when p2p is off. */
  get syncProtocol (): SyncProtocol | undefined { return this._sync }

  get blobs (): BlobStore {
    if (this._blobs == null) throw new Error('node not started')
    return this._blobs
  }

  /** Scoped API tokens (the daemon's own token is the admin one) */
  get tokens (): ApiTokens {
    if (this._tokens == null) throw new Error('node not started')
    return this._tokens
  }

  get token (): string {
    if (this.apiToken == null) throw new Error('node not started')
    return this.apiToken
  }

  get isStarted (): boolean { return this.state === 'started' }

  async start (): Promise<void> {
    if (this.state !== 'stopped') return
    this.state = 'starting'
    const { dataDir } = this.config
    await prepareDataDir(dataDir, this.log)
    // before any store opens: on a full disk the reserve is released, so the stores open and deletes can run
    this.disk = new DiskGuard({ dir: dataDir, reserveBytes: this.config.diskReserve, log: this.logger.forComponent('hearth:disk') })
    this.disk.prepare()
    this.disk.start()

    const { keyPair, created } = await loadOrCreateKeyFile(join(dataDir, FILES.deviceKey))
    const privateKey = libp2pPrivateKey(keyPair)
    this._peerId = peerIdFromPrivateKey(privateKey)
    this.log.info({ peer_id: this._peerId.toString(), created }, created ? 'created device key' : 'loaded device key')

    this.apiToken = this.config.apiToken ?? await loadOrCreateToken(join(dataDir, FILES.apiToken))
    this._store = new NodeStore(join(dataDir, FILES.nodeDb))
    this._tokens = new ApiTokens(this._store, this.apiToken)
    const disk = this.disk
    this._blobs = createBlobStore({
      path: join(dataDir, FILES.blobsDb),
      quotas: this.config.quotas,
      scrubBytesPerSecond: this.config.scrubRate,
      scrubIntervalMs: this.config.scrubIntervalMs,
      // the cache leaves the reserve's size free, and while the disk is full as much as writes need back
      freeSpace: () => disk.cacheRoom(),
      onDiskFull: () => { disk.markFull('blob store') }
    }, { logger: this.logger })
    await this._blobs.start()
    this.blobsOpen = true
    this._trust = await TrustService.open({ dataDir, deviceKey: keyPair, labels: this.config.labels }, { store: this._store, logger: this.logger })
    // a first start needs no `hearth trust init`: documents and /automerge work at once
    if (this.config.autoAgent) await this._trust.ensureAgent(hostname())
    this._docs = new DocumentService({ dataDir, deviceKey: keyPair }, { trust: this._trust, logger: this.logger })
    await this._docs.start()

    if (this.config.enableP2p) {
      await this.startHost(privateKey, keyPair)
    } else {
      this.log.info('p2p disabled (ENABLE_P2P=false): running local-only')
    }
    this.state = 'started'
  }

  /** What each peer may cost: the inbound budget, stranger caps, protocol access */
  get policy (): PeerPolicy {
    if (this._policy == null) throw new Error('p2p not started')
    return this._policy
  }

  private async startHost (privateKey: PrivateKey, deviceKey: KeyPair): Promise<void> {
    this._policy = new PeerPolicy({
      budgetBytes: this.config.p2pInboundBudget,
      maxStrangers: this.config.p2pMaxStrangers,
      strangersPerIp: this.config.p2pStrangersPerIp,
      strangersPerSubnet: this.config.p2pStrangersPerIp * 2,
      strangerIdleMs: this.config.p2pStrangerIdleMs
    }, { penalty: this.penalty, log: this.logger.forComponent('hearth:peers') })
    const host = await createHost({
      privateKey,
      listenHost: this.config.p2pHost,
      tcpPort: this.config.p2pPort,
      wsPort: wsPort(this.config),
      mdns: !this.config.disableMdns,
      policy: this.policy,
      relay: this.config.relay ? { maxReservations: this.config.relayMaxReservations, durationMs: this.config.relayDurationMs, dataBytes: this.config.relayDataBytes } : undefined,
      reserve: this.config.relayReserve === 'always'
    })
    this._host = host
    this.penalty.attach(async peer => { await host.hangUp(peerIdFromString(peer)) }, this.logger.forComponent('hearth:penalty'))
    this.policy.bind({ host, trust: this.trust, isBootstrap: peer => this.bootstrap?.isBootstrap(peer) ?? false, pairingProtocol: PAIR_PROTOCOL })
    if (!watchDhtJunk(host.services.dht, (peer, reason) => { this.policy.offence(peer.toString(), reason) })) {
      this.log.warn('this kad-dht release hides its inbound handler: junk on the DHT protocol is refused but not struck')
    }
    watchPeers(host, { policy: this.policy, store: this._store, latency: this.latency, log: this.log })
    this._exchange = new TrustExchange({ pullIntervalMs: this.config.trustPullIntervalMs }, { host, trust: this.trust, store: this._store!, policy: this.policy, log: this.logger.forComponent('hearth:trust-exchange'), onDiskFull: where => { this.disk?.markFull(where) } })
    await this._exchange.start()
    this._blocks = new BlockExchange({ host, store: this.blobs, trust: this.trust, policy: this.policy, log: this.logger.forComponent('hearth:blocks'), relayTransfers: this.config.relayTransfers })
    await this._blocks.start()
    this._replication = new ReplicationManager(
      { intervalMs: this.config.replicationIntervalMs, proofIntervalMs: this.config.proofIntervalMs, labels: this.config.labels, deviceKey, targets: this.config.replicationTargets, holdOwn: this.config.holdOwn, quotas: this.config.quotas },
      { host, blobs: this.blobs, trust: this.trust, store: this._store!, blocks: this._blocks, policy: this.policy, log: this.logger.forComponent('hearth:replication'), diskFull: () => this.disk?.full === true, onDiskFull: where => { this.disk?.markFull(where) } })
    await this._replication.start()
    this._sync = new SyncProtocol({ host, docs: this.docs, trust: this.trust, policy: this.policy, log: this.logger.forComponent('hearth:sync') })
    await this._sync.start()
    const reach = this.reach = new ReachabilityTracker(host)
    reach.start()
    if (this.config.relayReserve !== 'never') {
      this.relayKeeper = new RelayKeeper(host, this.policy, this.logger.forComponent('hearth:relay'), { mode: this.config.relayReserve, reach })
      this.relayKeeper.start(listener => this.trust.graph.onStatement(listener))
    }
    if (this.config.holePunch) {
      this.puncher = new HolePuncher({ host, policy: this.policy, reach, log: this.logger.forComponent('hearth:hole-punch') })
      await this.puncher.start()
    }
    try {
      await host.start()
    } catch (err: any) {
      throw portInUse(err, this.config) ?? err
    }
    this.log.info({ addresses: host.getMultiaddrs().map(a => a.toString()) }, 'libp2p host listening')

    this.bootstrap = new BootstrapDialer({ addrs: this.config.bootstrap }, { host, log: this.logger.forComponent('hearth:bootstrap') })
    this.bootstrap.start()
    if (this.config.bootstrapDns != null) {
      this.dnsBootstrap = new DnsBootstrap({
        name: this.config.bootstrapDns,
        port: this.config.p2pPort,
        intervalMs: this.config.bootstrapDnsIntervalMs,
        servers: this.config.dnsServers,
        selfAddresses: () => host.getMultiaddrs().flatMap(a => a.getComponents().filter(c => c.name === 'ip4' || c.name === 'ip6').map(c => c.value ?? ''))
      }, { dialer: this.bootstrap, log: this.logger.forComponent('hearth:dns-bootstrap') })
      this.dnsBootstrap.start()
    }
    if (this._store != null) redialKnownPeers(host, this._store)
  }

  async stop (): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return
    this.state = 'stopping'
    this.dnsBootstrap?.stop()
    this.bootstrap?.stop()
    this._policy?.stop()
    this.relayKeeper?.stop()
    this.puncher?.stop()
    this.reach?.stop()
    await this._sync?.stop().catch(() => {})
    await this._replication?.stop().catch(() => {})
    await this._blocks?.stop().catch(() => {})
    await this._exchange?.stop().catch(() => {})
    if (this._host != null) {
      try {
        await this._host.stop()
      } catch (err: any) {
        this.log.warn({ err: err?.message }, 'libp2p stop failed')
      }
    }
    await this._docs?.stop().catch(err => { this.log.warn({ err: err?.message }, 'document store close failed') })
    if (this._blobs != null && this.blobsOpen) {
      this.blobsOpen = false
      try {
        await this._blobs.close()
      } catch (err: any) {
        this.log.warn({ err: err?.message }, 'blob store close failed')
      }
    }
    this._trust?.close()
    this._store?.close()
    this.disk?.stop()
    this.state = 'stopped'
  }

  readiness (): Readiness {
    const started = this.state === 'started'
    const store = started && (this._store?.check() ?? false)
    const blobs = started && this.blobsOpen
    const p2p = !this.config.enableP2p ? 'disabled' as const : this._host?.status === 'started'
    // a full disk still serves reads (and frees space): it is reported, not unready
    const disk = this.disk?.full === true ? 'full' as const : 'ok' as const
    return { ready: store && blobs && p2p !== false, checks: { store, blobs, p2p, disk } }
  }

  p2pStatus (): P2PStatus {
    const host = this._host
    return {
      schema_version: API_SCHEMA_VERSION,
      enabled: host != null,
      peer_id: this.peerId.toString(),
      addresses: host?.getMultiaddrs().map(a => a.toString()) ?? [],
      labels: this.config.labels,
      mdns: host != null && !this.config.disableMdns,
      peers: host != null ? peerViews(host, this.latency, peer => this.policy.classOf(peer)) : [],
      bootstrap: {
        ...(this.bootstrap?.status() ?? { configured: this.config.bootstrap, discovered: [], connected: [], pending: [] }),
        dns: this.dnsBootstrap?.status() ?? null
      },
      replication: replicationSummary(this._replication?.status()),
      sync: this.syncStatus(),
      limits: this.peerLimits(),
      relay: relayStatus(host),
      reachability: this.reach?.status() ?? null,
      hole_punch: this.puncher != null ? { enabled: true, ...this.puncher.stats } : { enabled: false, attempts: 0, successes: 0, failures: {}, last: null }
    }
  }

  /** The inbound budget, connections by class and refusals; null without p2p */
  peerLimits (): PeerPolicyStats | null {
    return this._policy?.stats() ?? null
  }

  syncStatus (): SyncStatus {
    return syncStatusOf(this._docs?.loaded, this._sync?.sessionViews() ?? [], this.wsClients)
  }

  /** Dials a peer by multiaddr (with or without /p2p/). */
  async connect (addr: string): Promise<{ peer_id: string }> {
    const host = this.requireHost()
    let ma
    try { ma = multiaddr(addr) } catch { throw new InvalidMultiaddrError(`not a valid multiaddr: ${addr.slice(0, 200)}`) }
    try {
      const conn = await host.dial(ma, { signal: AbortSignal.timeout(15_000) })
      return { peer_id: conn.remotePeer.toString() }
    } catch (err: any) {
      throw new DialFailedError(`could not dial ${addr}: ${err?.message ?? err}`)
    }
  }

  async disconnect (peer: string): Promise<void> {
    const host = this.requireHost()
    let id: PeerId
    try { id = peerIdFromString(peer) } catch { throw new InvalidPeerIdError(`not a valid peer id: ${peer.slice(0, 200)}`) }
    if (host.getConnections(id).length === 0) throw new PeerNotConnectedError(`not connected to ${peer}`)
    // a hang-up the user asked for: libp2p must not redial it at once
    await host.peerStore.merge(id, { tags: { [SYNC_KEEP_ALIVE_TAG]: undefined } }).catch(() => {})
    await host.hangUp(id)
  }

  private requireHost (): HearthHost {
    if (this._host == null) throw new P2PDisabledError('p2p is disabled on this node (ENABLE_P2P=false)')
    return this._host
  }
}

/**
 * Creates the data folder 0700. A folder this user does not own (a volume
 * root, a bind mount) cannot be chmod'ed: that is fine if we can write in it,
 * and a clear error if we cannot.
 */
async function prepareDataDir (dataDir: string, log: Logger): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
  } catch (err: any) {
    throw new DataDirError(`cannot create the data folder ${dataDir}: ${err?.code ?? err?.message}`)
  }
  try {
    await chmod(dataDir, 0o700)
  } catch (err: any) {
    if (err?.code !== 'EPERM') throw err
    try {
      await access(dataDir, constants.W_OK | constants.X_OK)
    } catch {
      throw new DataDirError(`the data folder ${dataDir} is not writable by this user (uid ${process.getuid?.()}): point HEARTH_DATA at a folder it owns`)
    }
    log.warn({ data: dataDir }, 'the data folder belongs to another user: its mode was left as it is')
  }
}

async function loadOrCreateToken (path: string): Promise<string> {
  try {
    const token = (await readFile(path, 'utf8')).trim()
    if (token.length >= 16) return token
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('base64url')
  await writeFile(path, token + '\n', { mode: 0o600 })
  await chmod(path, 0o600)
  return token
}

/** libp2p's refusal to listen, when a port is taken, as one line naming the setting to change */
function portInUse (err: any, config: HearthConfig): P2pPortInUseError | undefined {
  const text = String(err?.message ?? '')
  if (err?.name !== 'UnsupportedListenAddressesError' || !text.includes('EADDRINUSE')) return undefined
  const taken = [...text.matchAll(/\/ip[46]\/([^/]+)\/tcp\/(\d+)(\/ws)?: Error: listen EADDRINUSE/g)]
  const what = taken.map(m => m[3] != null
    ? `WebSocket port ${m[2]} on ${m[1]} (HEARTH_P2P_WS_PORT${config.p2pWsPort === undefined ? ', which defaults to P2P_PORT + 1' : ''})`
    : `TCP port ${m[2]} on ${m[1]} (P2P_PORT)`)
  return new P2pPortInUseError(`the libp2p ${what.length > 0 ? what.join(' and ') : 'port'} ${what.length > 1 ? 'are' : 'is'} taken, by another Hearth daemon or another program: set another port, or 0 for a free one`)
}
