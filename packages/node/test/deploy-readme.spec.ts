// docker/README.md gives exact commands; these checks keep them in step with
// the files they drive: links, the names the kubectl commands use, the ports
// the docker commands publish, and the kustomize overlay example (rendered).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { configFor, DOCKER, parseDockerfile } from './deploy-helpers.js'
import { tempDir } from './helpers.js'

const readme = readFileSync(join(DOCKER, 'README.md'), 'utf8')
const k8s = (file: string): any => parseYaml(readFileSync(join(DOCKER, 'k8s', file), 'utf8'))
const sts = k8s('statefulset.yaml')
const secret = k8s('secret.example.yaml')
const apiService = k8s('service-api.yaml')

describe('docker/README.md', () => {
  let dir: { path: string, remove: () => Promise<void> }
  before(async () => { dir = await tempDir() })
  after(async () => { await dir.remove() })

  it('links only to files that exist', () => {
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map(m => m[1]).filter(l => !/^[a-z]+:/.test(l))
    assert.ok(links.length > 5)
    for (const link of links) assert.ok(existsSync(join(DOCKER, link)), `link ${link}`)
  })

  it('names the Secret, StatefulSet, pods and Service the manifests define', () => {
    const token = sts.spec.template.spec.containers[0].env.find((e: any) => e.name === 'HEARTH_API_TOKEN').valueFrom.secretKeyRef
    assert.match(readme, new RegExp(`create secret generic ${token.name} \\\\\\n\\s+--from-literal=${token.key}=`))
    assert.equal(secret.metadata.name, token.name)
    assert.match(readme, new RegExp(`rollout status statefulset/${sts.metadata.name}\\b`))
    assert.match(readme, new RegExp(`exec ${sts.metadata.name}-0 -- hearth status`))
    assert.match(readme, new RegExp(`http://${apiService.metadata.name}\\.<namespace>\\.svc:${apiService.spec.ports[0].port}`))
    assert.match(readme, /hearth\.io\/doorway: "true"/)
  })

  it('publishes the ports the image exposes, and runs the unit install the way the script expects', () => {
    const df = parseDockerfile(readFileSync(join(DOCKER, 'Dockerfile'), 'utf8'))
    const exposed = df.stages.at(-1)!.instructions.filter(i => i.cmd === 'EXPOSE').flatMap(i => i.args.split(/\s+/))
    const run = /docker run -d --name hearth [^`]*?hearth:0\.1\.0/s.exec(readme)?.[0] ?? ''
    for (const port of exposed) assert.match(run, new RegExp(`-p (?:127\\.0\\.0\\.1:)?${port}:${port}\\b`), `docker run publishes ${port}`)
    assert.match(readme, /docker build -f docker\/Dockerfile -t hearth:0\.1\.0 \./)
    assert.match(readme, /sudo docker\/systemd\/install\.sh\n/)
    assert.match(readme, /sudo systemctl enable --now hearth/)
  })

  it('has an overlay example that kustomize renders into the change it promises', (t) => {
    const block = /```yaml\n(# overlays\/community\/kustomization\.yaml\n[\s\S]*?)```/.exec(readme)
    assert.ok(block != null, 'the overlay example is in the README')
    const overlay = join(dir.path, 'overlays', 'community')
    mkdirSync(overlay, { recursive: true })
    writeFileSync(join(overlay, 'kustomization.yaml'), block[1])
    cpSync(join(DOCKER, 'k8s'), join(dir.path, 'docker', 'k8s'), { recursive: true })
    const r = spawnSync('kubectl', ['kustomize', overlay], { encoding: 'utf8' })
    if (r.error != null) {
      t.skip('kubectl is not installed: overlay not rendered')
      return
    }
    assert.equal(r.status, 0, r.stderr)
    const docs = parseAllDocuments(r.stdout).map(d => d.toJS())
    for (const d of docs) assert.equal(d.metadata.namespace, 'community')
    const rendered = docs.find(d => d.kind === 'StatefulSet')
    assert.equal(rendered.spec.template.spec.containers[0].image, 'registry.example.org/hearth:0.1.0')
    assert.equal(rendered.spec.volumeClaimTemplates[0].spec.resources.requests.storage, '100Gi')
    assert.equal(rendered.spec.volumeClaimTemplates[0].spec.storageClassName, 'local-ssd')
    assert.equal(rendered.spec.template.metadata.labels['hearth.io/cluster'], 'smith-family')
    // the env patch merges by name (and moves the entry to the front): the same
    // variables, and each $(NAME) still defined before the entry that uses it
    const env: Array<{ name: string, value?: string }> = rendered.spec.template.spec.containers[0].env
    assert.deepEqual(env.map(e => e.name).sort(), sts.spec.template.spec.containers[0].env.map((e: any) => e.name).sort())
    env.forEach((e, i) => {
      for (const ref of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
        assert.ok(env.slice(0, i).some(x => x.name === ref[1]), `${e.name} uses $(${ref[1]}) defined before it`)
      }
    })
    const quotas = configFor({ HEARTH_DATA: '/data/hearth', HEARTH_QUOTAS: env.find(e => e.name === 'HEARTH_QUOTAS')?.value ?? '' }).quotas
    const total = Object.values(quotas).reduce((a, b) => a + (b ?? 0), 0)
    assert.ok(total <= 0.8 * 100 * 2 ** 30, `overlay quotas ${total / 2 ** 30} GiB fit its 100Gi claim`)
  })
})
