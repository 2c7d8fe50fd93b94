import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { ed, generateKeyPair, loadOrCreateKeyFile, readKeyFile, writeKeyFile } from '../src/index.js'

describe('key files', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'hearth-keys-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('creates a key once with 0600 in a 0700 folder and reuses it', async () => {
    const path = join(dir, 'keys', 'device.key')
    const first = await loadOrCreateKeyFile(path)
    assert.equal(first.created, true)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'keys'))).mode & 0o777, 0o700)
    const second = await loadOrCreateKeyFile(path)
    assert.equal(second.created, false)
    assert.deepEqual(second.keyPair.publicKey, first.keyPair.publicKey)
    assert.deepEqual(second.keyPair.secretKey, first.keyPair.secretKey)
  })

  it('signs and verifies with the stored key', async () => {
    const path = join(dir, 'agent.key')
    await writeKeyFile(path, generateKeyPair())
    const pair = await readKeyFile(path)
    const msg = new TextEncoder().encode('hearth')
    const sig = ed.sign(msg, pair.secretKey)
    assert.equal(ed.verify(sig, msg, pair.publicKey), true)
  })

  it('refuses a file whose public key does not match its secret', async () => {
    const path = join(dir, 'device.key')
    await writeKeyFile(path, generateKeyPair())
    const file = JSON.parse(await readFile(path, 'utf8'))
    file.public_key = Buffer.from(generateKeyPair().publicKey).toString('base64url')
    await writeFile(path, JSON.stringify(file))
    await assert.rejects(readKeyFile(path), { code: 'ERR_INVALID_KEY_FILE' })
  })

  it('refuses garbage and tightens loose permissions', async () => {
    const bad = join(dir, 'bad.key')
    await writeFile(bad, 'not json')
    await assert.rejects(readKeyFile(bad), { code: 'ERR_INVALID_KEY_FILE' })
    const path = join(dir, 'loose.key')
    await writeKeyFile(path, generateKeyPair())
    await chmod(path, 0o664)
    await readKeyFile(path)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
  })
})

describe('key derivation', () => {
  it('derives the same public key as noble-ed25519', async () => {
    const { keyPairFromSecret } = await import('../src/index.js')
    for (let i = 0; i < 50; i++) {
      const secret = ed.utils.randomSecretKey()
      assert.deepEqual(keyPairFromSecret(secret).publicKey, ed.getPublicKey(secret))
    }
  })
})
