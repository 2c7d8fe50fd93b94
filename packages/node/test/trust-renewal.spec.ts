import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { generateKeyPair, keyIdFromPublicKey } from '@hearth/trust'
import { silentLogger } from '../src/logger.js'
import { NodeStore } from '../src/node-store.js'
import { decodeInvitation } from '../src/trust/invitation.js'
import { TrustService } from '../src/trust/service.js'
import { tempDir } from './helpers.js'

const DAY = 86_400_000

describe('device certificate renewal', () => {
  it('issues again, on the agent-key device, every certificate of the agent that ends within a month, but not a revoked one', async () => {
    const dir = await tempDir()
    const store = new NodeStore(join(dir.path, 'node.db'))
    const deviceKey = generateKeyPair()
    let trust = await TrustService.open({ dataDir: dir.path, deviceKey, labels: { rack: 'r1' } }, { store, logger: silentLogger })
    try {
      await trust.initAgent()
      const laptop = generateKeyPair()
      const tablet = generateKeyPair()
      // pairing as the pairing protocol does it, once the secure channel proved the new device's key
      const secret = (): Uint8Array => decodeInvitation(trust.createInvite('12D3KooWtest', []).invitation).secret
      trust.acceptPairing(secret(), laptop.publicKey, { name: 'laptop', labels: { room: 'study' } })
      trust.acceptPairing(secret(), tablet.publicKey, { name: 'tablet' })
      const agent = trust.agentId as string
      const certs = (): Map<string, { certificate: string, expiresAt: number, name?: string, labels: Record<string, string> }> =>
        new Map(trust.graph.devicesOf(agent).map(d => [d.device, d]))
      const before = certs()
      assert.equal(before.size, 3)

      // nothing is due for eleven months
      assert.equal(trust.renewCertificates(), 0)
      assert.equal(trust.renewCertificates(Date.now() + 330 * DAY), 0)

      // the tablet's certificate is revoked: only this device and the laptop are renewed, keeping name and labels
      trust.revoke(before.get(keyIdFromPublicKey(tablet.publicKey))!.certificate)
      assert.equal(trust.renewCertificates(Date.now() + 340 * DAY), 2)
      const after = certs()
      assert.equal(after.size, 2)
      const self = after.get(trust.deviceId)!
      const lap = after.get(keyIdFromPublicKey(laptop.publicKey))!
      assert.notEqual(self.certificate, before.get(trust.deviceId)!.certificate)
      assert.notEqual(lap.certificate, before.get(keyIdFromPublicKey(laptop.publicKey))!.certificate)
      assert.ok(lap.expiresAt >= before.get(keyIdFromPublicKey(laptop.publicKey))!.expiresAt)
      assert.equal(lap.name, 'laptop')
      assert.deepEqual(lap.labels, { room: 'study' })
      assert.deepEqual(self.labels, { rack: 'r1' })

      // a device without the agent key renews nothing
      trust.close()
      const other = await tempDir()
      const otherStore = new NodeStore(join(other.path, 'node.db'))
      const plain = await TrustService.open({ dataDir: other.path, deviceKey: generateKeyPair(), labels: {} }, { store: otherStore, logger: silentLogger })
      assert.equal(plain.renewCertificates(Date.now() + 400 * DAY), 0)
      plain.close()
      otherStore.close()
      await other.remove()
      trust = await TrustService.open({ dataDir: dir.path, deviceKey, labels: { rack: 'r1' } }, { store, logger: silentLogger })
    } finally {
      trust.close()
      store.close()
      await dir.remove()
    }
  })
})
