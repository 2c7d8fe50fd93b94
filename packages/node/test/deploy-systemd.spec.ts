// The systemd unit and its install script, checked without a running systemd:
// `systemd-analyze verify` and `security --offline`, the directives Hearth
// needs (and the one Node cannot live with), the environment through the
// daemon's own config loader, and install.sh staged into a temporary root.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { configFor, DOCKER, parseUnit, timeSpanSeconds } from './deploy-helpers.js'
import { tempDir } from './helpers.js'

const UNIT_PATH = join(DOCKER, 'systemd', 'hearth.service')
const INSTALL = join(DOCKER, 'systemd', 'install.sh')
const unitText = readFileSync(UNIT_PATH, 'utf8')
const unit = parseUnit(unitText)
const service = unit.Service
const one = (key: string): string | undefined => service[key]?.at(-1)

/** Environment= lines (each `K=V`, possibly several per line, possibly quoted) as a map. */
function unitEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of service.Environment ?? []) {
    for (const m of line.matchAll(/"([^"=]+)=([^"]*)"|(\S+?)=(\S*)/g)) env[m[1] ?? m[3]] = m[2] ?? m[4]
  }
  return env
}

function systemdAnalyze (): string | undefined {
  for (const p of ['/usr/bin/systemd-analyze', '/bin/systemd-analyze']) if (existsSync(p)) return p
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
  return r.error == null ? 'systemd-analyze' : undefined
}

describe('the systemd unit', () => {
  let dir: { path: string, remove: () => Promise<void> }
  before(async () => { dir = await tempDir() })
  after(async () => { await dir.remove() })

  /** A copy of the unit whose ExecStart runs this Node (verify wants the binary to exist). */
  function unitCopy (name: string, text = unitText): string {
    const folder = join(dir.path, name)
    mkdirSync(folder, { recursive: true })
    const path = join(folder, 'hearth.service')
    writeFileSync(path, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`))
    return path
  }

  it('passes systemd-analyze verify without a warning', (t) => {
    const analyze = systemdAnalyze()
    if (analyze == null) {
      t.skip('systemd-analyze is not installed (Debian: apt-get install systemd): unit not verified')
      return
    }
    const r = spawnSync(analyze, ['verify', unitCopy('verify')], { encoding: 'utf8' })
    const about = (r.stdout + r.stderr).split('\n').filter(l => l.includes('hearth.service'))
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(about, [])
    // verify only warns (exit 0) on an unknown directive: that is why the output is checked too
    const typo = spawnSync(analyze, ['verify', unitCopy('typo', unitText.replace('ProtectHome=yes', 'ProtectHomes=yes'))], { encoding: 'utf8' })
    assert.match(typo.stderr, /Unknown key 'ProtectHomes'/)
  })

  it('scores as well hardened in systemd-analyze security', (t) => {
    const analyze = systemdAnalyze()
    if (analyze == null) {
      t.skip('systemd-analyze is not installed: exposure not measured')
      return
    }
    const r = spawnSync(analyze, ['security', '--offline=yes', '--threshold=20', '--no-pager', unitCopy('security')], { encoding: 'utf8' })
    if (r.status !== 0 && /unrecognized option|unknown option/i.test(r.stderr)) {
      t.skip('this systemd-analyze has no --offline security analysis (systemd < 250)')
      return
    }
    const m = /Overall exposure level for hearth\.service: (\d+\.\d+)/.exec(r.stdout)
    assert.ok(m != null, r.stdout + r.stderr)
    t.diagnostic(`exposure ${m[1]} (0 best, 10 worst)`)
    assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} is above 2.0:\n${r.stdout}`)
  })

  it('runs the bundled daemon as its own user with its state in /var/lib/hearth', () => {
    assert.match(one('ExecStart') ?? '', /^\/\S*node \/opt\/hearth\/dist\/bundle\/hearth\.mjs daemon$/)
    assert.ok(one('DynamicUser') === 'yes' || (one('User') != null && one('User') !== 'root'), 'a dedicated user')
    assert.equal(one('StateDirectory'), 'hearth')
    assert.equal(one('StateDirectoryMode'), '0700')
    assert.equal(one('Type'), 'exec')
    assert.deepEqual(service.EnvironmentFile, ['-/etc/hearth/hearth.env'])
    assert.equal(unit.Install.WantedBy[0], 'multi-user.target')
    assert.ok(unit.Unit.Wants.includes('network-online.target') && unit.Unit.After.includes('network-online.target'))
  })

  it('sets an environment the daemon accepts', () => {
    const c = configFor(unitEnv())
    assert.equal(c.dataDir, '/var/lib/hearth')
    assert.equal(c.httpHost, '127.0.0.1', 'the API stays on loopback unless hearth.env says otherwise')
  })

  it('waits longer than the daemon\'s graceful stop before SIGKILL, and restarts it on failure but not on bad config', () => {
    const c = configFor(unitEnv())
    assert.equal(one('KillSignal'), 'SIGTERM')
    const stop = timeSpanSeconds(one('TimeoutStopSec') ?? '90')
    assert.ok(stop * 1000 >= c.shutdownTimeoutMs + 5000, `TimeoutStopSec ${stop} s vs HEARTH_SHUTDOWN_TIMEOUT_MS ${c.shutdownTimeoutMs}`)
    assert.equal(one('Restart'), 'on-failure')
    assert.ok((one('RestartPreventExitStatus') ?? '').split(/\s+/).includes('2'), 'exit 2 (configuration) is not retried forever')
  })

  it('is hardened with what Node allows', () => {
    const expected: Record<string, string> = {
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      NoNewPrivileges: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictNamespaces: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      CapabilityBoundingSet: ''
    }
    for (const [k, v] of Object.entries(expected)) assert.equal(one(k), v, k)
    // TCP/WebSocket listeners and dials, and netlink to list interfaces for libp2p's addresses
    assert.deepEqual(one('RestrictAddressFamilies')?.split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX'])
    // V8's JIT needs pages that are writable, then executable: Node aborts under this
    assert.equal(service.MemoryDenyWriteExecute, undefined)
    assert.ok((service.SystemCallFilter ?? []).some(f => f.split(/\s+/).includes('@system-service')))
    assert.equal(one('SystemCallErrorNumber'), 'EPERM', 'a refused system call fails instead of killing the daemon')
  })
})

describe('install.sh', () => {
  let dir: { path: string, remove: () => Promise<void> }
  before(async () => { dir = await tempDir() })
  after(async () => { await dir.remove() })

  function install (destdir: string, args: string[] = ['--unit-only'], extra: Record<string, string> = {}): { status: number | null, out: string } {
    const r = spawnSync('bash', [INSTALL, ...args], {
      encoding: 'utf8',
      env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, DESTDIR: destdir, ...extra }
    })
    return { status: r.status, out: r.stdout + r.stderr }
  }

  it('is valid bash (and shellcheck-clean where shellcheck is installed)', (t) => {
    const syntax = spawnSync('bash', ['-n', INSTALL], { encoding: 'utf8' })
    assert.equal(syntax.status, 0, syntax.stderr)
    assert.ok((statSync(INSTALL).mode & 0o111) !== 0, 'executable')
    const sc = spawnSync('shellcheck', [INSTALL], { encoding: 'utf8' })
    if (sc.error != null) {
      t.diagnostic('shellcheck is not installed: lint skipped')
      return
    }
    assert.equal(sc.status, 0, sc.stdout)
  })

  it('installs the unit, a settings template and the CLI wrapper, and runs again without touching settings', () => {
    const root = join(dir.path, 'root')
    // --unit-only installs around a daemon that is already in place
    mkdirSync(join(root, 'opt/hearth/dist/bundle'), { recursive: true })
    writeFileSync(join(root, 'opt/hearth/dist/bundle/hearth.mjs'), '')

    const first = install(root)
    assert.equal(first.status, 0, first.out)
    assert.match(first.out, /systemctl enable --now hearth/)
    assert.match(first.out, /Not reloading systemd/, 'no systemctl under DESTDIR')

    const installed = readFileSync(join(root, 'etc/systemd/system/hearth.service'), 'utf8')
    const node = realpathSync(process.execPath)
    assert.match(installed, new RegExp(`^ExecStart=${node.replace(/[.+]/g, '\\$&')} /opt/hearth/dist/bundle/hearth\\.mjs daemon$`, 'm'))
    assert.equal(installed.replace(/^ExecStart=.*$/m, ''), unitText.replace(/^ExecStart=.*$/m, ''), 'only ExecStart differs from the shipped unit')

    const envFile = join(root, 'etc/hearth/hearth.env')
    assert.equal(statSync(envFile).mode & 0o777, 0o600, 'the settings may hold the API token')
    const template = readFileSync(envFile, 'utf8')
    // every setting the template offers, switched on, is one the daemon accepts
    const offered: Record<string, string> = {}
    for (const m of template.matchAll(/^#([A-Z][A-Z0-9_]*)=(.*)$/gm)) offered[m[1]] = m[2] === '' ? 't'.repeat(32) : m[2]
    assert.ok(Object.keys(offered).length >= 5, `template offers settings: ${Object.keys(offered).join(', ')}`)
    assert.doesNotThrow(() => configFor({ HEARTH_DATA: '/var/lib/hearth', ...offered }))
    assert.ok(timeSpanSeconds('30') * 1000 > Number(offered.HEARTH_SHUTDOWN_TIMEOUT_MS ?? 0))

    const wrapper = readFileSync(join(root, 'usr/local/bin/hearth'), 'utf8')
    assert.match(wrapper, /HEARTH_DATA=\$\{HEARTH_DATA:-\/var\/lib\/hearth\} exec \S+node \/opt\/hearth\/dist\/bundle\/hearth\.mjs "\$@"/)
    assert.equal(statSync(join(root, 'usr/local/bin/hearth')).mode & 0o777, 0o755)

    // the operator edits the settings; a second run keeps them
    writeFileSync(envFile, 'HEARTH_LABELS=rack=attic\n')
    const second = install(root)
    assert.equal(second.status, 0, second.out)
    assert.match(second.out, /keeping/)
    assert.equal(readFileSync(envFile, 'utf8'), 'HEARTH_LABELS=rack=attic\n')
    assert.equal(readFileSync(join(root, 'etc/systemd/system/hearth.service'), 'utf8'), installed)
  })

  it('refuses what would not work: a prefix under /home (ProtectHome), no build in place, unknown arguments', () => {
    const root = join(dir.path, 'refuse')
    const home = install(root, ['--unit-only'], { HEARTH_PREFIX: '/home/me/hearth' })
    assert.notEqual(home.status, 0)
    assert.match(home.out, /ProtectHome/)
    const missing = install(root)
    assert.notEqual(missing.status, 0)
    assert.match(missing.out, /no daemon at/)
    const bad = install(root, ['--frobnicate'])
    assert.notEqual(bad.status, 0)
    assert.ok(!existsSync(join(root, 'etc')), 'nothing written')
  })
})
