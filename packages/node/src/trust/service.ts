import { createHash, randomBytes } from 'node:crypto'
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createDeviceCertificate, createRelationship, createRevocation, createStorageGrant, createTrustGraph,
  keyIdFromPublicKey, publicKeyFromKeyId, readKeyFile, writeKeyFile, generateKeyPair
} from '@hearth/trust'
import type { ComponentLogger, KeyPair, Logger, TrustGraph } from '@hearth/trust'
import { FILES } from '../constants.js'
import { AlreadyJoinedError, InvitationRejectedError, NoAgentKeyError } from '../errors.js'
import type { NodeStore } from '../node-store.js'
import { encodeInvitation } from './invitation.js'

const DAY = 86_400_000
/** Device certificates last a year and are renewed when a month is left (looked at on start and twice a day). */
const CERT_LIFETIME = 365 * DAY
const CERT_RENEW_BEFORE = 30 * DAY
const CERT_CHECK_INTERVAL = DAY / 2
export const INVITE_TTL_MS = 15 * 60_000
/** statements handed to a newly paired device in one go */
const PAIRING_STATEMENTS = 2000

export interface TrustServiceInit {
  dataDir: string
  deviceKey: KeyPair
  labels: Record<string, string>
}

export interface TrustSelf {
  device_id: string
  agent_id: string | null
  has_agent_key: boolean
  certificate: string | null
  certificate_expires_at: string | null
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/**
 * This device's place in the trust graph: the graph itself (`trust.db`), the
 * agent key if this device holds it (`keys/agent.key`, only on the device
 * where `hearth trust init` ran), and the acts that need it — certifying
 * devices, relationships, grants, revocations, invitations.
 */
export class TrustService {
  readonly graph: TrustGraph
  readonly deviceId: string
  private readonly init: TrustServiceInit
  private readonly store: NodeStore
  private readonly log: Logger
  private agentKey?: KeyPair
  private renewTimer?: NodeJS.Timeout

  private constructor (init: TrustServiceInit, store: NodeStore, logger: ComponentLogger, graph: TrustGraph, agentKey: KeyPair | undefined) {
    this.init = init
    this.store = store
    this.log = logger.forComponent('hearth:trust')
    this.graph = graph
    this.agentKey = agentKey
    this.deviceId = keyIdFromPublicKey(init.deviceKey.publicKey)
  }

  static async open (init: TrustServiceInit, components: { store: NodeStore, logger: ComponentLogger }): Promise<TrustService> {
    // peers' bad signatures are not diagnosed for their domain: it costs extra verifications
    const graph = createTrustGraph({ path: join(init.dataDir, FILES.trustDb), diagnoseDomain: false }, { logger: components.logger })
    let agentKey: KeyPair | undefined
    try {
      agentKey = await readKeyFile(join(init.dataDir, FILES.agentKey))
    } catch (err: any) {
      if (err?.code !== 'ENOENT') { graph.close(); throw err }
    }
    const service = new TrustService(init, components.store, components.logger, graph, agentKey)
    service.renewCertificates()
    service.renewTimer = setInterval(() => { service.renewCertificates() }, CERT_CHECK_INTERVAL)
    service.renewTimer.unref()
    return service
  }

  get agentId (): string | undefined {
    if (this.agentKey != null) return this.graph.resolveAgent(keyIdFromPublicKey(this.agentKey.publicKey))
    return this.graph.agentOfDevice(this.deviceId)?.agent
  }

  self (): TrustSelf {
    const info = this.graph.agentOfDevice(this.deviceId)
    return {
      device_id: this.deviceId,
      agent_id: this.agentId ?? null,
      has_agent_key: this.agentKey != null,
      certificate: info?.certificate ?? null,
      certificate_expires_at: info != null ? new Date(info.expiresAt).toISOString() : null
    }
  }

  /**
   * Makes this device the home of a new agent: an agent key, and a
   * certificate for this device. Idempotent; refused on a device that already
   * acts for another agent (it joined one).
   */
  async initAgent (opts: { name?: string } = {}): Promise<TrustSelf> {
    if (this.agentKey != null) return this.self()
    const joined = this.graph.agentOfDevice(this.deviceId)
    if (joined != null) throw new AlreadyJoinedError(`this device already acts for agent ${joined.agent}`)
    const key = generateKeyPair()
    await writeKeyFile(join(this.init.dataDir, FILES.agentKey), key)
    this.agentKey = key
    this.certify(this.init.deviceKey.publicKey, { name: opts.name ?? 'first device', labels: this.init.labels })
    this.log.info({ agent: this.agentId }, 'created agent key and certified this device')
    return this.self()
  }

  /**
   * The first start: a personal agent for a device that never had one (no
   * agent key, no certificate ever, revoked or lapsed ones included). False
   * when there was nothing to do.
   */
  async ensureAgent (name: string): Promise<boolean> {
    if (this.agentKey != null || this.everCertified()) return false
    await this.initAgent({ name })
    this.log.info({ agent: this.agentId, device: this.deviceId }, 'first start: created a personal agent for this device (`hearth trust join` replaces it while it has nothing of its own; HEARTH_AUTO_AGENT=false skips this)')
    return true
  }

  /** Whether any agent ever certified this device (revoked and lapsed certificates count) */
  private everCertified (): boolean {
    if (this.graph.agentOfDevice(this.deviceId) != null) return true
    try {
      this.graph.requireDevice(this.deviceId)
      return true
    } catch (err: any) {
      return err?.code !== 'ERR_DEVICE_NOT_CERTIFIED'
    }
  }

  /**
   * Why this device's agent may not be given up for another's: undefined when
   * it may (this device holds its key, and the agent has made nothing but
   * this device's certificates), else the reason.
   */
  replaceable (): string | undefined {
    const agent = this.agentId
    if (agent == null) return undefined
    if (this.agentKey == null) return `this device already acts for agent ${agent}`
    if (this.graph.devicesOf(agent).some(d => d.device !== this.deviceId)) return `agent ${agent} has other devices`
    if (this.graph.relationships(agent).length > 0) return `agent ${agent} has relationships`
    if (this.graph.grantsGiven(agent).length > 0 || this.graph.grantsReceived(agent).length > 0) return `agent ${agent} has storage grants`
    return undefined
  }

  /**
   * Gives up this device's own agent so that it can act for another: its
   * certificates from that agent are revoked (signed by it, so peers that
   * saw them learn it), and the key moves aside to `keys/agent-<id>.retired`.
   */
  async retireAgent (): Promise<void> {
    const key = this.agentKey
    const agent = this.agentId
    if (key == null || agent == null) return
    // each query names the newest valid certificate: revoke until none is left (a renewal leaves older ones)
    for (let i = 0; i < 64; i++) {
      const cert = this.graph.agentOfDevice(this.deviceId)
      if (cert == null || cert.agent !== agent) break
      this.graph.add(createRevocation(key, { target: cert.certificate }).bytes)
    }
    const from = join(this.init.dataDir, FILES.agentKey)
    await rename(from, join(this.init.dataDir, FILES.keysDir, `agent-${agent.slice(-12)}.retired`))
    this.agentKey = undefined
    this.log.info({ agent }, 'gave up this device\'s own agent to join another (its key is kept aside in keys/)')
  }

  private requireAgentKey (): KeyPair {
    if (this.agentKey == null) {
      throw new NoAgentKeyError('this device holds no agent key: run `hearth trust init` here, or act from the device that holds it')
    }
    return this.agentKey
  }

  private certify (device: Uint8Array, opts: { name?: string, labels?: Record<string, string> }): Uint8Array {
    const cert = createDeviceCertificate(this.requireAgentKey(), {
      device,
      expiresAt: Date.now() + CERT_LIFETIME,
      ...(opts.name != null ? { name: opts.name } : {}),
      ...(opts.labels != null && Object.keys(opts.labels).length > 0 ? { labels: opts.labels } : {})
    })
    this.graph.add(cert.bytes)
    return cert.bytes
  }

  /**
   * On the device that holds the agent key: every certificate of the
   * agent's devices (this one and those it paired) that ends within a month
   * is issued again, with the same name and labels (this device's labels
   * from its configuration). The trust exchange carries the new ones to the
   * other devices. A device whose certificate was revoked or has lapsed is
   * not listed, so it is not renewed. Returns how many were renewed.
   */
  renewCertificates (now = Date.now()): number {
    const agent = this.agentKey != null ? this.agentId : undefined
    if (agent == null) return 0
    const devices = this.graph.devicesOf(agent)
    // the first start after `trust init` on an older data folder, or a certificate that lapsed
    if (!devices.some(d => d.device === this.deviceId)) devices.push({ device: this.deviceId, agent, labels: {}, certificate: '', issuedAt: 0, expiresAt: 0 })
    let renewed = 0
    for (const d of devices) {
      if (d.expiresAt - now > CERT_RENEW_BEFORE) continue
      const own = d.device === this.deviceId
      try {
        this.certify(own ? this.init.deviceKey.publicKey : publicKeyFromKeyId(d.device), { name: d.name, labels: own ? this.init.labels : d.labels })
        renewed++
        this.log.info({ device: d.device, name: d.name, expired: new Date(d.expiresAt).toISOString() }, own ? 'renewed this device\'s certificate' : 'renewed the certificate of a paired device')
      } catch (err: any) {
        this.log.warn({ device: d.device, err: err?.message }, 'could not renew a device certificate')
      }
    }
    return renewed
  }

  relate (agent: string, kind: 'family' | 'friend' | 'community', expiresInDays: number): string {
    const s = createRelationship(this.requireAgentKey(), { subject: agent, kind, expiresAt: Date.now() + expiresInDays * DAY })
    return this.graph.add(s.bytes).id
  }

  grant (agent: string, layer: 'sovereign' | 'reciprocal' | 'invested' | 'gift', quotaBytes: number, labels: Record<string, string>, expiresInDays: number): string {
    const s = createStorageGrant(this.requireAgentKey(), {
      grantee: agent,
      layer,
      quotaBytes,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      expiresAt: Date.now() + expiresInDays * DAY
    })
    return this.graph.add(s.bytes).id
  }

  revoke (target: string): string {
    return this.graph.add(createRevocation(this.requireAgentKey(), { target }).bytes).id
  }

  /** A one-time invitation for a new device, valid for 15 minutes. */
  createInvite (peerId: string, addrs: string[]): { invitation: string, expiresAt: number } {
    this.requireAgentKey()
    const secret = randomBytes(32)
    const expiresAt = Date.now() + INVITE_TTL_MS
    this.store.addInvite(sha256(secret), expiresAt)
    return { invitation: encodeInvitation({ peer: peerId, addrs, secret, expiresAt }), expiresAt }
  }

  /** Whether an invitation this device made is still unused and unexpired */
  invitationOpen (): boolean {
    return this.store.hasOpenInvite()
  }

  /**
   * The inviting side of pairing: uses the invitation up and certifies the
   * device whose key the secure channel proved. Returns the certificate and
   * what the new device should know of the graph.
   */
  acceptPairing (secret: Uint8Array, device: Uint8Array, opts: { name?: string, labels?: Record<string, string> }): { certificate: Uint8Array, statements: Uint8Array[] } {
    this.requireAgentKey()
    if (!this.store.consumeInvite(sha256(secret))) throw new InvitationRejectedError('the invitation is unknown, used or expired')
    const certificate = this.certify(device, opts)
    const page = this.graph.statements({ limit: PAIRING_STATEMENTS })
    this.log.info({ device: keyIdFromPublicKey(device), name: opts.name }, 'paired a new device')
    return { certificate, statements: page.statements.map(s => s.bytes) }
  }

  close (): void {
    clearInterval(this.renewTimer)
    this.graph.close()
  }
}
