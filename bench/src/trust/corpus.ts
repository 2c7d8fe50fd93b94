import {
  createDeviceCertificate, createDeviceRevocation, createKeyRotation, createRelationship, createRevocation,
  createStorageGrant, generateKeyPair, keyIdFromPublicKey
} from '@hearth/trust'
import type { KeyPair, SignedStatement, StorageLayer } from '@hearth/trust'

/**
 * A synthetic community: per agent 4 device certificates, 8 relationships,
 * 6 storage grants (half limited to a region), a grant revocation and a
 * device revocation — 20 statements — and one agent in fifty rotates its key
 * halfway. Deterministic in shape, random in keys.
 */
export interface Corpus {
  statements: SignedStatement[]
  agents: string[]
  devices: string[]
  now: number
}

const T0 = 1_800_000_000_000
const YEAR = 365 * 86_400_000
const KINDS = ['family', 'friend', 'community'] as const
const LAYERS: StorageLayer[] = ['reciprocal', 'invested', 'gift']

export function buildCorpus (size: number): Corpus {
  const agentCount = Math.max(2, Math.floor(size / 20))
  const agentKeys: KeyPair[] = Array.from({ length: agentCount }, () => generateKeyPair())
  const agents = agentKeys.map(k => keyIdFromPublicKey(k.publicKey))
  const devices: string[] = []
  const statements: SignedStatement[] = []
  const pick = (i: number, j: number): KeyPair => agentKeys[(i + 1 + ((j * 7919) % (agentCount - 1))) % agentCount]
  for (let i = 0; i < agentCount && statements.length < size; i++) {
    let key = agentKeys[i]
    const at = (n: number): { issuedAt: number, expiresAt: number } => ({ issuedAt: T0 + n, expiresAt: T0 + YEAR })
    const deviceKeys = Array.from({ length: 4 }, () => generateKeyPair())
    for (const [d, device] of deviceKeys.entries()) {
      statements.push(createDeviceCertificate(key, { device: device.publicKey, name: `device-${d}`, labels: { region: d % 2 === 0 ? 'eu' : 'us' }, ...at(d) }))
      devices.push(keyIdFromPublicKey(device.publicKey))
    }
    statements.push(createDeviceRevocation(key, { device: deviceKeys[3].publicKey, issuedAt: T0 + 10 }))
    if (i % 50 === 0) {
      const next = generateKeyPair()
      statements.push(createKeyRotation(key, next, { issuedAt: T0 + 20 }))
      key = next
    }
    for (let r = 0; r < 8; r++) {
      statements.push(createRelationship(key, { subject: pick(i, r).publicKey, kind: KINDS[r % 3], ...at(30 + r) }))
    }
    const grants: SignedStatement[] = []
    for (let g = 0; g < 6; g++) {
      grants.push(createStorageGrant(key, {
        grantee: pick(i, g + 3).publicKey,
        layer: LAYERS[g % 3],
        quotaBytes: (g + 1) * 2 ** 30,
        ...(g % 2 === 0 ? { labels: { region: 'eu' } } : {}),
        ...at(50 + g)
      }))
    }
    statements.push(...grants)
    statements.push(createRevocation(key, { target: grants[5].id, issuedAt: T0 + 60 }))
  }
  return { statements: statements.slice(0, size), agents, devices, now: T0 + 1000 }
}
