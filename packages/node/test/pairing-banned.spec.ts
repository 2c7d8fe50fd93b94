import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { HearthNode, loadConfig, silentLogger } from '../src/index.js'
import { framed } from '../src/p2p/framing.js'
import { PAIR_PROTOCOL } from '../src/trust/exchange.js'
import { tempDir, waitFor } from './helpers.js'

/**
 * An address whose strangers keep getting banned is refused to strangers for
 * ten minutes. A new device behind the same router (the same address) must
 * still be able to pair while an invitation waits for it: one stranger at a
 * time from that address is let in, and it may only pair.
 */
async function rawPeer (): Promise<Libp2p> {
  return await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
}

const p2pEnv = (data: string): Record<string, string> => ({ HEARTH_DATA: data, P2P_PORT: '0', HEARTH_P2P_HOST: '127.0.0.1', DISABLE_MDNS: 'true', HEARTH_P2P_WS_PORT: '0' })

describe('pairing from an address banned for strangers', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let home: HearthNode
  let laptop: HearthNode | undefined
  let target: Multiaddr
  const peers: Libp2p[] = []

  before(async () => {
    dir = await tempDir()
    home = new HearthNode(loadConfig({ env: p2pEnv(join(dir.path, 'home')) }), { logger: silentLogger })
    await home.start()
    await home.trust.initAgent()
    target = multiaddr(home.p2pStatus().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws'))!)
  })
  after(async () => {
    await Promise.all(peers.map(async p => { await p.stop() }))
    await laptop?.stop()
    await home.stop()
    await dir.remove()
  })

  const fresh = async (): Promise<Libp2p> => {
    const p = await rawPeer()
    peers.push(p)
    return p
  }
  const connected = (p: Libp2p): boolean => home.host!.getConnections(p.peerId).some(c => c.status === 'open')

  /** A stranger guessing invitation secrets until it is banned (each wrong guess is two strikes of five) */
  const guessUntilBanned = async (p: Libp2p): Promise<void> => {
    for (let i = 0; i < 3 && !home.policy.banned(p.peerId); i++) {
      const stream = await p.dialProtocol(target, PAIR_PROTOCOL, { signal: AbortSignal.timeout(5000) })
      const f = framed(stream, { maxBytes: 64 * 1024, timeoutMs: 5000 })
      await f.write({ type: 'join', secret: randomBytes(32) })
      const reply = await f.read<{ type: string }>().catch(() => undefined)
      if (reply != null) assert.equal(reply.type, 'error')
      f.abort('done')
    }
    await waitFor(() => home.policy.banned(p.peerId), 5000, 'the guessing stranger to be banned')
  }

  it('lets one stranger in to pair while an invitation is open, for pairing only, and the new device pairs', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 3; i++) await guessUntilBanned(await fresh())
    assert.ok(home.policy.stats().addresses_banned >= 1, 'the address was not banned after three banned strangers')

    // no invitation open: a fresh identity from that address is refused
    const before = home.policy.stats().connections_refused
    const early = await fresh()
    await early.dial(target, { signal: AbortSignal.timeout(5000) }).catch(() => {})
    await waitFor(() => home.policy.stats().connections_refused > before, 5000, 'the fresh stranger to be refused')
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(connected(early), false, 'a stranger from a banned address got in with no invitation open')

    const { invitation } = home.trust.createInvite(home.host!.peerId.toString(), [target.toString()])

    // with one open: one stranger from the address is let in, and may only pair
    const first = await fresh()
    await first.dial(target, { signal: AbortSignal.timeout(5000) })
    await waitFor(() => connected(first), 5000, 'the first stranger to be let in')
    const refusedBefore = home.policy.stats().streams_refused
    const blocks = await first.dialProtocol(target, '/hearth/blocks/1.0.0', { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
    await waitFor(() => home.policy.stats().streams_refused > refusedBefore, 5000, 'a gift-block stream from the pairing-only stranger to be refused')
    if (blocks != null) await waitFor(() => blocks.status !== 'open', 5000, 'the refused stream to close')
    // a second one from the same address waits its turn
    const second = await fresh()
    await second.dial(target, { signal: AbortSignal.timeout(5000) }).catch(() => {})
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.equal(connected(second), false, 'two strangers from a banned address were let in at once')

    // the real new device, from the same address, pairs once the slot is free
    await first.hangUp(home.host!.peerId)
    await waitFor(() => !connected(first), 5000, 'the first stranger to leave')
    laptop = new HearthNode(loadConfig({ env: { ...p2pEnv(join(dir.path, 'laptop')), HEARTH_AUTO_AGENT: 'false' } }), { logger: silentLogger })
    await laptop.start()
    const self = await laptop.trustExchange!.join(invitation, { name: 'laptop' })
    assert.equal(self.agent_id, home.trust.agentId)
    await waitFor(() => home.policy.classOf(laptop!.host!.peerId) === 'linked', 5000, 'the new device to be linked')
  })
})
