import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../src/config/load.js'
import { cleanEnv, runCli, tempDir } from './helpers.js'

describe('configuration', () => {
  let dir: { path: string, remove: () => Promise<void> }
  before(async () => { dir = await tempDir() })
  after(async () => { await dir.remove() })

  it('has the documented defaults', () => {
    const c = loadConfig({ env: { HOME: '/home/x' } })
    assert.equal(c.dataDir, '/home/x/.local/share/hearth')
    assert.equal(c.enableP2p, true)
    assert.equal(c.p2pPort, 9876)
    assert.equal(c.httpHost, '127.0.0.1')
    assert.equal(c.httpPort, 7878)
    assert.equal(c.disableMdns, false)
    assert.deepEqual(c.bootstrap, [])
    assert.equal(c.apiToken, undefined)
    assert.equal(c.shutdownTimeoutMs, 10_000)
    assert.equal(loadConfig({ env: { HOME: '/h', XDG_DATA_HOME: '/xdg' } }).dataDir, '/xdg/hearth')
  })

  it('takes flags over environment over the config file', async () => {
    const data = join(dir.path, 'prec')
    await mkdir(data)
    await writeFile(join(data, 'config.json'), JSON.stringify({ p2p_port: 1111, http_port: 2222, labels: { region: 'eu' }, log_level: 'debug' }))
    const c = loadConfig({ flags: { 'p2p-port': '3333' }, env: { HEARTH_DATA: data, P2P_PORT: '4444', HEARTH_HTTP_PORT: '5555' } })
    assert.equal(c.p2pPort, 3333)
    assert.equal(c.httpPort, 5555)
    assert.deepEqual(c.labels, { region: 'eu' })
    assert.equal(c.logLevel, 'debug')
    assert.equal(c.configFile, join(data, 'config.json'))
  })

  it('parses the deployment names and lists', () => {
    const c = loadConfig({
      env: {
        HEARTH_DATA: dir.path,
        ENABLE_P2P: 'false',
        DISABLE_MDNS: '1',
        HEARTH_BOOTSTRAP: '/ip4/10.0.0.2/tcp/9876, /dns4/hearth-0.hearth/tcp/9876/p2p/12D3KooWCfR2gTWKoGFxLkfVVfkLRVADYUehPRbZngwd1wx5Vmcz',
        HEARTH_LABELS: 'region=eu,cluster=smith,rack=home',
        HEARTH_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz'
      }
    })
    assert.equal(c.enableP2p, false)
    assert.equal(c.disableMdns, true)
    assert.equal(c.bootstrap.length, 2)
    assert.deepEqual(c.labels, { region: 'eu', cluster: 'smith', rack: 'home' })
    assert.equal(c.apiToken, 'abcdefghijklmnopqrstuvwxyz')
    assert.equal(loadConfig({ flags: { 'no-p2p': true }, env: { HEARTH_DATA: dir.path } }).enableP2p, false)
  })

  const bad: Array<[string, Record<string, string>, string]> = [
    ['a port that is not a number', { P2P_PORT: 'abc' }, 'P2P_PORT'],
    ['a port out of range', { HEARTH_HTTP_PORT: '70000' }, 'HEARTH_HTTP_PORT'],
    ['a boolean that is not one', { ENABLE_P2P: 'maybe' }, 'ENABLE_P2P'],
    ['a bad multiaddr', { HEARTH_BOOTSTRAP: '/ip4/not-an-ip/tcp/1' }, 'HEARTH_BOOTSTRAP'],
    ['a bad label', { HEARTH_LABELS: 'region' }, 'HEARTH_LABELS'],
    ['a label given twice', { HEARTH_LABELS: 'a=1,a=2' }, 'HEARTH_LABELS'],
    ['a short token', { HEARTH_API_TOKEN: 'short' }, 'HEARTH_API_TOKEN'],
    ['an unknown log level', { HEARTH_LOG_LEVEL: 'loud' }, 'HEARTH_LOG_LEVEL'],
    ['an unknown HEARTH_ variable', { HEARTH_BOOTSRAP: '/ip4/1.2.3.4/tcp/1' }, 'HEARTH_BOOTSRAP'],
    ['a bad host', { HEARTH_HTTP_HOST: 'not a host!' }, 'HEARTH_HTTP_HOST']
  ]
  for (const [what, env, key] of bad) {
    it(`rejects ${what}, naming ${key}`, () => {
      assert.throws(() => loadConfig({ env: { HEARTH_DATA: dir.path, ...env } }), (err: any) => {
        assert.equal(err.code, 'ERR_INVALID_CONFIG')
        assert.equal(err.key, key)
        return true
      })
    })
  }

  it('ignores the variables Kubernetes injects for Services named hearth-*, but not typos', () => {
    const env = {
      HEARTH_DATA: dir.path,
      HEARTH_API_SERVICE_HOST: '10.96.0.12',
      HEARTH_API_SERVICE_PORT: '7878',
      HEARTH_API_SERVICE_PORT_HTTP: '7878',
      HEARTH_API_PORT: 'tcp://10.96.0.12:7878',
      HEARTH_API_PORT_7878_TCP: 'tcp://10.96.0.12:7878',
      HEARTH_API_PORT_7878_TCP_PROTO: 'tcp',
      HEARTH_API_PORT_7878_TCP_PORT: '7878',
      HEARTH_API_PORT_7878_TCP_ADDR: '10.96.0.12'
    }
    assert.doesNotThrow(() => loadConfig({ env }))
    assert.throws(() => loadConfig({ env: { ...env, HEARTH_HTTPS_PORT: '443' } }), (e: any) => e.key === 'HEARTH_HTTPS_PORT')
  })

  it('accepts label values as long as a Kubernetes node name', () => {
    const node = 'n'.repeat(253)
    assert.equal(loadConfig({ env: { HEARTH_DATA: dir.path, HEARTH_LABELS: `node=${node}` } }).labels.node, node)
    assert.throws(() => loadConfig({ env: { HEARTH_DATA: dir.path, HEARTH_LABELS: `node=${node}x` } }), { code: 'ERR_INVALID_CONFIG' })
  })

  it('rejects unknown keys and bad JSON in the config file', async () => {
    const file = join(dir.path, 'bad.json')
    await writeFile(file, JSON.stringify({ p2p_port: 1, colour: 'blue' }))
    assert.throws(() => loadConfig({ env: { HEARTH_DATA: dir.path, HEARTH_CONFIG: file } }), (err: any) => err.code === 'ERR_INVALID_CONFIG' && err.key.endsWith(': colour'))
    await writeFile(file, '{ not json')
    assert.throws(() => loadConfig({ flags: { config: file }, env: { HEARTH_DATA: dir.path } }), { code: 'ERR_INVALID_CONFIG' })
    assert.throws(() => loadConfig({ flags: { config: join(dir.path, 'missing.json') }, env: {} }), (err: any) => err.key === '--config')
  })

  it('makes the daemon exit 2 with a message naming the key', async () => {
    const env = cleanEnv({ HEARTH_DATA: join(dir.path, 'cli'), P2P_PORT: 'abc' })
    const r = await runCli(['daemon'], env)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /P2P_PORT/)

    const file = join(dir.path, 'unknown-key.json')
    await writeFile(file, JSON.stringify({ http_prot: 1 }))
    const r2 = await runCli(['daemon', '--config', file], cleanEnv({ HEARTH_DATA: join(dir.path, 'cli') }))
    assert.equal(r2.code, 2)
    assert.match(r2.stderr, /http_prot/)

    const r3 = await runCli(['daemon', '--p2p-prot', '5'], cleanEnv({ HEARTH_DATA: join(dir.path, 'cli') }))
    assert.equal(r3.code, 2)
    assert.match(r3.stderr, /--p2p-prot/)
  })
})
