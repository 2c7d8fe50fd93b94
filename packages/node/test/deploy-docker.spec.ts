// The container image, checked without a Docker engine: the Dockerfile's
// stages, user, init, ports and environment (through the daemon's own config
// loader), the build context, and the health-check script against a real daemon.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { configFor, DOCKER, execForm, NODE_PKG, parseDockerfile, ROOT, stageEnv } from './deploy-helpers.js'
import type { Dockerfile, Stage } from './deploy-helpers.js'
import { closedPort, spawnDaemon, tempDir } from './helpers.js'

const dockerfile: Dockerfile = parseDockerfile(readFileSync(join(DOCKER, 'Dockerfile'), 'utf8'))
const runtime: Stage = dockerfile.stages[dockerfile.stages.length - 1]
const builder: Stage = dockerfile.stages[0]
const all = (stage: Stage, cmd: string): string[] => stage.instructions.filter(i => i.cmd === cmd).map(i => i.args)
const last = (stage: Stage, cmd: string): string | undefined => all(stage, cmd).at(-1)

/** Node's major version in an image reference such as node:22-bookworm-slim. */
function nodeMajor (image: string): number {
  const m = /^(?:docker\.io\/(?:library\/)?)?node:(\d+)/.exec(image)
  assert.ok(m != null, `${image} is not an official node image with a major version tag`)
  return Number(m[1])
}

/** A small .dockerignore matcher: exact paths, folder prefixes, `**` and `*` globs. */
function ignoredBy (patterns: string[], path: string): boolean {
  let ignored = false
  for (const raw of patterns) {
    const negate = raw.startsWith('!')
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '')
    const re = new RegExp('^' + pattern.split('/').map(seg =>
      seg === '**' ? '(?:.+/)?' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '/'
    ).join('').replace(/\/$/, '') + '(?:/.*)?$')
    if (re.test(path)) ignored = !negate
  }
  return ignored
}

describe('Dockerfile', () => {
  const env = stageEnv(runtime)

  it('builds in a builder stage with the toolchain for the native addons, and runs on a slim Node LTS', () => {
    assert.ok(dockerfile.stages.length >= 2, 'multi-stage')
    assert.equal(builder.name, 'builder')
    const runs = all(builder, 'RUN').join('\n')
    for (const pkg of ['python3', 'make', 'g++']) assert.match(runs, new RegExp(`apt-get install[^\\n]*\\s${pkg.replace('+', '\\+')}(\\s|$)`), `builder installs ${pkg}`)
    assert.match(runs, /npm install -g pnpm@10/)
    assert.match(runs, /pnpm install --frozen-lockfile/)
    assert.match(runs, /pnpm build/)
    for (const stage of dockerfile.stages) {
      assert.ok(nodeMajor(stage.image) >= 22, `${stage.image}: an LTS with Node 22 or newer`)
      assert.match(stage.image, /-slim$/, `${stage.image}: a slim base`)
    }
    assert.equal(builder.image, runtime.image, 'the addons are compiled against the Node and glibc they run on')
    assert.ok(all(runtime, 'COPY').some(a => a.includes('--from=builder')), 'the runtime stage takes the build from the builder')
    assert.ok(!all(runtime, 'RUN').some(r => /\b(g\+\+|make|python3|pnpm)\b/.test(r)), 'no toolchain in the runtime stage')
  })

  it('installs dependencies from every workspace manifest before the sources arrive', () => {
    const ws = parseYaml(readFileSync(join(ROOT, 'pnpm-workspace.yaml'), 'utf8')) as { packages: string[] }
    const manifests: string[] = []
    for (const glob of ws.packages) {
      const dirs = glob.endsWith('/*')
        ? readdirSync(join(ROOT, glob.slice(0, -2)), { withFileTypes: true }).filter(d => d.isDirectory()).map(d => `${glob.slice(0, -2)}/${d.name}`)
        : [glob]
      for (const d of dirs) if (existsSync(join(ROOT, d, 'package.json'))) manifests.push(`${d}/package.json`)
    }
    assert.ok(manifests.length >= 4, `found the workspace packages: ${manifests.join(', ')}`)
    const ins = builder.instructions
    const install = ins.findIndex(i => i.cmd === 'RUN' && i.args.includes('pnpm install --frozen-lockfile'))
    const copied = ins.slice(0, install).filter(i => i.cmd === 'COPY').flatMap(i => i.args.split(/\s+/).slice(0, -1))
    for (const m of [...manifests, 'pnpm-lock.yaml', 'pnpm-workspace.yaml', 'package.json']) {
      assert.ok(copied.includes(m), `COPY ${m} before pnpm install (or a frozen install fails on the missing importer)`)
    }
  })

  it('runs as a fixed non-root uid:gid that the image creates', () => {
    const user = last(runtime, 'USER')
    assert.ok(user != null, 'USER is set')
    const m = /^(\d+):(\d+)$/.exec(user)
    assert.ok(m != null, `USER ${user} is numeric uid:gid, so runAsNonRoot can check it`)
    assert.notEqual(Number(m[1]), 0)
    assert.notEqual(Number(m[2]), 0)
    const runs = all(runtime, 'RUN').join('\n')
    assert.match(runs, new RegExp(`useradd[^\\n]*--uid ${m[1]}\\b`))
    assert.match(runs, new RegExp(`groupadd[^\\n]*--gid ${m[2]}\\b`))
    assert.match(runs, new RegExp(`chown ${m[1]}:${m[2]} /data`), 'the volume is the user\'s')
  })

  it('starts the daemon under an init that forwards signals, and stops it with SIGTERM', () => {
    const entry = execForm(last(runtime, 'ENTRYPOINT') ?? '')
    assert.ok(entry != null, 'ENTRYPOINT in exec form (a shell would swallow SIGTERM)')
    assert.ok(['/usr/bin/tini', 'tini', '/usr/bin/dumb-init', 'dumb-init'].includes(entry[0]), `init first: ${entry[0]}`)
    if (entry[0].endsWith('tini')) {
      assert.equal(entry[1], '--')
      assert.match(all(runtime, 'RUN').join('\n'), /apt-get install[^\n]*\btini\b/)
    }
    const node = entry.indexOf('node')
    assert.ok(node > 0, 'node runs under the init')
    assert.equal(entry[node + 1], '/app/dist/bundle/hearth.mjs')
    assert.deepEqual(execForm(last(runtime, 'CMD') ?? ''), ['daemon'])
    assert.equal(last(runtime, 'STOPSIGNAL') ?? 'SIGTERM', 'SIGTERM')
    // what lands in /app is @hearth/node's deploy folder, whose bundle the package builds
    assert.match(all(builder, 'RUN').join('\n'), /pnpm --filter @hearth\/node deploy --legacy --prod \/out/)
    assert.ok(all(runtime, 'COPY').includes('--from=builder /out /app'))
    assert.ok(existsSync(join(NODE_PKG, 'scripts', 'bundle.mjs')))
  })

  it('has a HEALTHCHECK on /health with Node (no curl in slim images)', () => {
    const hc = last(runtime, 'HEALTHCHECK')
    assert.ok(hc != null, 'HEALTHCHECK is set')
    const cmd = execForm(hc)
    assert.deepEqual(cmd, ['node', '/app/healthcheck.mjs'])
    assert.ok(all(runtime, 'COPY').includes('docker/healthcheck.mjs /app/healthcheck.mjs'))
    assert.match(readFileSync(join(DOCKER, 'healthcheck.mjs'), 'utf8'), /\/health\b/)
    assert.match(hc, /--timeout=\d+s/)
  })

  it('declares the /data volume and exposes the HTTP, libp2p TCP and WebSocket ports it listens on', () => {
    assert.deepEqual(all(runtime, 'VOLUME'), ['/data'])
    const exposed = all(runtime, 'EXPOSE').flatMap(a => a.split(/\s+/)).map(p => Number(p.replace(/\/tcp$/, '')))
    const c = configFor(env)
    assert.deepEqual(exposed.sort(), [c.httpPort, c.p2pPort, c.p2pPort + 1].sort())
  })

  it('sets container defaults that the daemon accepts', () => {
    const c = configFor(env)
    assert.equal(c.dataDir, '/data')
    assert.equal(c.httpHost, '0.0.0.0')
    assert.equal(c.p2pHost, '0.0.0.0')
    assert.equal(c.disableMdns, true)
    assert.equal(c.enableP2p, true)
    assert.equal(c.apiToken, undefined, 'no token baked into the image')
    // `docker stop` and Compose send SIGKILL 10 s after SIGTERM unless told otherwise
    assert.ok(c.shutdownTimeoutMs + 1000 < 10_000, `graceful stop bound ${c.shutdownTimeoutMs} ms fits docker stop's default 10 s`)
    // a run-time token and bootstrap list on top of the image's defaults
    const withRun = configFor({ ...env, HEARTH_API_TOKEN: 'a'.repeat(32), HEARTH_BOOTSTRAP: '/dns4/hearth-0.hearth-p2p/tcp/9876' })
    assert.equal(withRun.apiToken, 'a'.repeat(32))
  })

  it('sends a build context without host builds, with everything the Dockerfile copies', () => {
    const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
    for (const p of ['node_modules', 'packages/node/node_modules', 'packages/node/dist', 'packages/node/dist/bundle/hearth.mjs', '.git', 'bench/results', 'packages/node/tsconfig.tsbuildinfo']) {
      assert.ok(ignoredBy(patterns, p), `${p} is left out of the context`)
    }
    for (const stage of dockerfile.stages) {
      for (const copy of all(stage, 'COPY').filter(a => !a.startsWith('--from'))) {
        for (const src of copy.split(/\s+/).filter(s => !s.startsWith('--')).slice(0, -1)) {
          if (src === '.') continue
          assert.ok(existsSync(join(ROOT, src)), `COPY ${src}: exists`)
          assert.ok(!ignoredBy(patterns, src), `COPY ${src}: not excluded by .dockerignore`)
        }
      }
    }
    for (const p of ['packages/node/src/bin.ts', 'packages/node/scripts/bundle.mjs', 'pnpm-lock.yaml']) {
      assert.ok(!ignoredBy(patterns, p), `${p} is in the context`)
    }
  })
})

describe('the health-check script', () => {
  const script = join(DOCKER, 'healthcheck.mjs')
  let dir: { path: string, remove: () => Promise<void> }
  before(async () => { dir = await tempDir() })
  after(async () => { await dir.remove() })

  async function check (env: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
    const child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', d => { stderr += String(d) })
    const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
    return { code, stderr }
  }

  it('passes while the daemon serves /health on all interfaces, and fails once it is gone', async () => {
    const dataDir = join(dir.path, 'data')
    const daemon = await spawnDaemon(dataDir, { HEARTH_HTTP_HOST: '0.0.0.0' })
    try {
      const port = new URL(daemon.url).port
      // found through api.json, as in the container (a wildcard address is reached on loopback)
      assert.equal((await check({ HEARTH_DATA: dataDir })).code, 0)
      // before api.json exists: from HEARTH_HTTP_HOST / HEARTH_HTTP_PORT
      assert.equal((await check({ HEARTH_DATA: join(dir.path, 'none'), HEARTH_HTTP_HOST: '0.0.0.0', HEARTH_HTTP_PORT: port })).code, 0)
    } finally {
      const stopped = await daemon.kill('SIGTERM')
      assert.equal(stopped.code, 0)
    }
    const gone = await check({ HEARTH_DATA: dataDir, HEARTH_HTTP_PORT: String(await closedPort()) })
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /ECONNREFUSED/)
  })
})
