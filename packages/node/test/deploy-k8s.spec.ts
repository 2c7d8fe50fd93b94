// The Kubernetes manifests, checked offline: every document against the
// upstream OpenAPI schemas (kubernetes-models), unknown fields through the
// same models' TypeScript types, what kustomize renders, and what matters for
// Hearth: grace period vs shutdown bound, probes, storage, DNS bootstrap, the
// token, the environment (through the daemon's own config loader) and who
// may reach which port.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import { parseAllDocuments } from 'yaml'
import { LAYERS } from '@hearth/blobstore'
import { wsPort as wsPortFor } from '../src/config/load.js'
import { CONFIG_OPTIONS, ConfigError } from '../src/index.js'
import { configFor, DOCKER, parseDockerfile } from './deploy-helpers.js'
import { unknownFields } from './deploy-k8s-types.js'

const K8S = join(DOCKER, 'k8s')
const NAMESPACE = 'community-a'
const NODE_NAME = 'worker-3'

interface Manifest { file: string, kind: string, apiVersion: string, name: string, obj: any }

function load (text: string, file: string): Manifest[] {
  return parseAllDocuments(text).map(doc => {
    assert.equal(doc.errors.length, 0, `${file}: ${doc.errors.map(e => e.message).join('; ')}`)
    return doc.toJS()
  }).filter(o => o != null).map(obj => ({ file, kind: obj.kind, apiVersion: obj.apiVersion, name: obj.metadata?.name, obj }))
}

const files = readdirSync(K8S).filter(f => /\.ya?ml$/.test(f)).sort()
const manifests = files.filter(f => f !== 'kustomization.yaml').flatMap(f => load(readFileSync(join(K8S, f), 'utf8'), f))
const kustomization = load(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml')[0].obj

const MODELS: Record<string, new (data: any) => { validate: () => void }> = {
  'apps/v1/StatefulSet': StatefulSet,
  'v1/Service': Service,
  'v1/Secret': Secret,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy
}

function one (kind: string, pred: (m: Manifest) => boolean = () => true): Manifest {
  const found = manifests.filter(m => m.kind === kind && pred(m))
  assert.equal(found.length, 1, `exactly one ${kind}`)
  return found[0]
}

const sts = one('StatefulSet').obj
const pod = sts.spec.template.spec
const container = pod.containers.find((c: any) => c.name === 'hearth')
const headless = one('Service', m => m.obj.spec.clusterIP === 'None').obj
const api = one('Service', m => m.obj.spec.clusterIP !== 'None').obj
const policy = one('NetworkPolicy').obj
const secret = one('Secret').obj

function containerPort (port: string | number): number {
  if (typeof port === 'number') return port
  const p = container.ports.find((x: any) => x.name === port)
  assert.ok(p != null, `container port named ${port}`)
  return p.containerPort
}

/** The container's environment as the kubelet hands it over: downward API, the Secret, $(VAR) expansion. */
function podEnv (token = 'k8s-test-token-0123456789abcdef'): Record<string, string> {
  const env: Record<string, string> = {}
  for (const e of container.env) {
    if (e.value !== undefined) {
      // $(NAME) refers to a variable defined earlier in the list; $$ escapes
      env[e.name] = String(e.value).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all: string, name?: string) =>
        name == null ? '$' : env[name] ?? all)
    } else if (e.valueFrom?.fieldRef != null) {
      const path: string = e.valueFrom.fieldRef.fieldPath
      const label = /^metadata\.labels\['(.+)'\]$/.exec(path)
      env[e.name] = path === 'metadata.namespace' ? NAMESPACE
        : path === 'spec.nodeName' ? NODE_NAME
          : path === 'metadata.name' ? 'hearth-0'
            : label != null ? sts.spec.template.metadata.labels[label[1]] ?? ''
              : assert.fail(`unexpected fieldRef ${path}`)
    } else if (e.valueFrom?.secretKeyRef != null) {
      env[e.name] = token
    } else {
      assert.fail(`env ${e.name}: unexpected source`)
    }
  }
  return env
}

describe('Kubernetes manifests', () => {
  it('are all valid against the Kubernetes schemas', () => {
    assert.deepEqual(files.filter(f => f !== 'kustomization.yaml'), ['networkpolicy.yaml', 'secret.example.yaml', 'service-api.yaml', 'service-p2p.yaml', 'statefulset.yaml'])
    for (const m of manifests) {
      const Model = MODELS[`${m.apiVersion}/${m.kind}`]
      assert.ok(Model != null, `${m.file}: no schema for ${m.apiVersion} ${m.kind}`)
      assert.doesNotThrow(() => { new Model(m.obj).validate() }, `${m.file}: ${m.kind} ${m.name}`)
    }
  })

  it('are checked for real: a broken manifest fails the same validation', () => {
    const broken = structuredClone(sts)
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'seven'
    assert.throws(() => { new StatefulSet(broken).validate() }, /containerPort/)
    const typo = structuredClone(headless)
    typo.spec.publishNotReadyAdresses = typo.spec.publishNotReadyAddresses
    assert.match(unknownFields([{ apiVersion: 'v1', kind: 'Service', obj: typo }]).join('\n'), /publishNotReadyAdresses/)
  })

  it('use no field the schemas do not know (a typo would be silently dropped)', () => {
    assert.deepEqual(unknownFields(manifests), [])
  })

  it('are namespace-agnostic', () => {
    for (const m of manifests) assert.equal(m.obj.metadata.namespace, undefined, `${m.file}: no metadata.namespace`)
    assert.equal(kustomization.namespace, undefined)
  })

  it('are listed in kustomization.yaml, all but the example Secret', () => {
    assert.equal(kustomization.kind, 'Kustomization')
    assert.deepEqual([...kustomization.resources].sort(), files.filter(f => f !== 'kustomization.yaml' && f !== 'secret.example.yaml'))
    const image = kustomization.images.find((i: any) => i.name === container.image.split(':')[0])
    assert.ok(image != null, 'the image can be retargeted with `kustomize edit set image`')
  })

  it('render with kustomize into the same valid objects', (t) => {
    const r = spawnSync('kubectl', ['kustomize', K8S], { encoding: 'utf8' })
    if (r.error != null) {
      t.skip('kubectl is not installed: kustomize rendering not checked')
      return
    }
    assert.equal(r.status, 0, r.stderr)
    const rendered = load(r.stdout, 'kubectl kustomize')
    assert.deepEqual(rendered.map(m => `${m.kind}/${m.name}`).sort(), manifests.filter(m => m.kind !== 'Secret').map(m => `${m.kind}/${m.name}`).sort())
    for (const m of rendered) new MODELS[`${m.apiVersion}/${m.kind}`](m.obj).validate()
    const renderedSts = rendered.find(m => m.kind === 'StatefulSet')?.obj
    assert.equal(renderedSts.spec.template.spec.containers[0].image, `hearth:${kustomization.images[0].newTag}`)
  })
})

describe('the StatefulSet', () => {
  it('gives the daemon longer than its own shutdown bound before SIGKILL', () => {
    const c = configFor(podEnv())
    assert.ok(sts.spec.template.spec.terminationGracePeriodSeconds * 1000 >= c.shutdownTimeoutMs + 5000,
      `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} s vs HEARTH_SHUTDOWN_TIMEOUT_MS ${c.shutdownTimeoutMs}`)
  })

  it('probes readiness on /ready and liveness on /health, on the port the API listens on', () => {
    const c = configFor(podEnv())
    assert.equal(container.readinessProbe.httpGet.path, '/ready')
    assert.equal(container.livenessProbe.httpGet.path, '/health')
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
      if (container[probe] == null) continue
      assert.equal(containerPort(container[probe].httpGet.port), c.httpPort, `${probe} port`)
    }
    if (container.startupProbe != null) assert.equal(container.startupProbe.httpGet.path, '/health')
    assert.equal(c.httpHost, '0.0.0.0', 'the kubelet reaches the API on the pod IP')
  })

  it('keeps each pod\'s SQLite files on its own ReadWriteOnce volume, one level below the mount', () => {
    assert.equal(sts.spec.volumeClaimTemplates.length, 1)
    const claim = sts.spec.volumeClaimTemplates[0]
    assert.deepEqual(claim.spec.accessModes, ['ReadWriteOnce'])
    const mount = container.volumeMounts.find((v: any) => v.name === claim.metadata.name)
    assert.ok(mount != null, 'the claim is mounted')
    const c = configFor(podEnv())
    // the volume root belongs to root; the daemon makes its folder 0700 itself
    assert.ok(c.dataDir.startsWith(`${mount.mountPath}/`), `HEARTH_DATA ${c.dataDir} is inside ${mount.mountPath}`)
  })

  it('bounds every storage layer so that together they fit the volume with room for SQLite', () => {
    const c = configFor(podEnv())
    const claim = sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage as string
    const units: Record<string, number> = { Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }
    const m = /^(\d+)(Mi|Gi|Ti)$/.exec(claim)
    assert.ok(m != null, `claim size ${claim}`)
    const volume = Number(m[1]) * units[m[2]]
    for (const layer of LAYERS) assert.ok(c.quotas[layer] != null, `HEARTH_QUOTAS bounds ${layer}`)
    const total = LAYERS.reduce((sum, layer) => sum + (c.quotas[layer] ?? 0), 0)
    assert.ok(total <= 0.8 * volume, `quotas total ${total / 2 ** 30} GiB of a ${claim} volume`)
  })

  it('runs as the image\'s non-root user with a read-only root filesystem and a writable /tmp', () => {
    const df = parseDockerfile(readFileSync(join(DOCKER, 'Dockerfile'), 'utf8'))
    const user = df.stages.at(-1)!.instructions.filter(i => i.cmd === 'USER').at(-1)!.args
    const [uid, gid] = user.split(':').map(Number)
    assert.equal(pod.securityContext.runAsNonRoot, true)
    assert.equal(pod.securityContext.runAsUser, uid)
    assert.equal(pod.securityContext.runAsGroup, gid)
    assert.equal(pod.securityContext.fsGroup, gid)
    assert.equal(container.securityContext.readOnlyRootFilesystem, true)
    assert.equal(container.securityContext.allowPrivilegeEscalation, false)
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL'])
    const tmp = container.volumeMounts.find((v: any) => v.mountPath === '/tmp')
    assert.ok(tmp != null, '/tmp is mounted')
    assert.ok(pod.volumes.find((v: any) => v.name === tmp.name)?.emptyDir != null, '/tmp is an emptyDir')
  })

  it('runs with the variables Kubernetes injects for its Services, though service links are off anyway', () => {
    // what the kubelet would add for each Service of the namespace
    const injected: Record<string, string> = {}
    for (const s of manifests.filter(m => m.kind === 'Service' && m.obj.spec.clusterIP !== 'None')) {
      const prefix = s.name.toUpperCase().replace(/-/g, '_')
      const port = s.obj.spec.ports[0].port
      injected[`${prefix}_SERVICE_HOST`] = '10.0.0.10'
      injected[`${prefix}_SERVICE_PORT`] = String(port)
      injected[`${prefix}_PORT`] = `tcp://10.0.0.10:${port}`
      injected[`${prefix}_PORT_${port}_TCP`] = `tcp://10.0.0.10:${port}`
      injected[`${prefix}_PORT_${port}_TCP_ADDR`] = '10.0.0.10'
    }
    assert.ok(Object.keys(injected).some(k => k.startsWith('HEARTH_')), 'a hearth-* Service injects HEARTH_* names')
    assert.doesNotThrow(() => configFor({ ...podEnv(), ...injected }))
    assert.equal(pod.enableServiceLinks, false)
  })

  it('sets an environment the daemon accepts: P2P on, no mDNS, DNS bootstrap through the headless service', (t) => {
    const env = podEnv()
    const c = configFor(env, name => t.diagnostic(`${name} is not yet known to the daemon: left out of the loadConfig check`))
    assert.equal(c.enableP2p, true)
    assert.equal(c.p2pPort, 9876)
    assert.equal(c.disableMdns, true)
    assert.equal(c.p2pHost, '0.0.0.0')
    assert.deepEqual(c.labels, { cluster: sts.spec.template.metadata.labels['hearth.io/cluster'], node: NODE_NAME })
    assert.equal(env.HEARTH_BOOTSTRAP_DNS, `${headless.metadata.name}.${NAMESPACE}.svc.cluster.local`)
    assert.equal(sts.spec.serviceName, headless.metadata.name)
    const option = CONFIG_OPTIONS.find(o => o.env === 'HEARTH_BOOTSTRAP_DNS')
    if (option != null) assert.match(JSON.stringify(c[option.key]), new RegExp(env.HEARTH_BOOTSTRAP_DNS.replace(/\./g, '\\.')))
  })

  it('takes the API token from the Secret, never from the manifest', () => {
    const token = container.env.find((e: any) => e.name === 'HEARTH_API_TOKEN')
    assert.equal(token.value, undefined)
    assert.equal(token.valueFrom.secretKeyRef.name, secret.metadata.name)
    assert.ok(token.valueFrom.secretKeyRef.key in secret.stringData)
    assert.equal(configFor(podEnv('x'.repeat(64))).apiToken, 'x'.repeat(64))
  })

  it('spreads pods over nodes and sizes them for a small daemon', () => {
    const terms = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution
    assert.ok(terms.some((x: any) => x.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' &&
      Object.entries(x.podAffinityTerm.labelSelector.matchLabels).every(([k, v]) => sts.spec.template.metadata.labels[k] === v)))
    const mib = (q: string): number => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? /^(\d+)Gi$/.exec(q)?.[1] ?? NaN) * (q.endsWith('Gi') ? 1024 : 1)
    assert.ok(mib(container.resources.requests.memory) >= 128, 'requests cover the ~100 MB idle footprint')
    assert.ok(mib(container.resources.limits.memory) >= 2 * mib(container.resources.requests.memory))
    assert.ok(container.resources.requests.cpu != null && container.resources.limits.cpu != null)
  })
})

describe('the Services', () => {
  const podLabels = sts.spec.template.metadata.labels
  const selects = (selector: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => podLabels[k] === v)

  it('list every pod, ready or not, under the headless name on the P2P ports', () => {
    const c = configFor(podEnv())
    assert.equal(headless.spec.clusterIP, 'None')
    assert.equal(headless.spec.publishNotReadyAddresses, true)
    assert.ok(selects(headless.spec.selector))
    const tcp = headless.spec.ports.find((p: any) => p.port === c.p2pPort)
    assert.ok(tcp != null, 'the libp2p TCP port')
    assert.equal(containerPort(tcp.targetPort), c.p2pPort)
    const ws = headless.spec.ports.find((p: any) => p.port === wsPortFor(c))
    assert.ok(ws != null, 'the libp2p WebSocket port')
    assert.equal(containerPort(ws.targetPort), wsPortFor(c))
  })

  it('give doorways a ClusterIP for the HTTP API', () => {
    const c = configFor(podEnv())
    assert.equal(api.spec.type ?? 'ClusterIP', 'ClusterIP')
    assert.notEqual(api.spec.clusterIP, 'None')
    assert.ok(selects(api.spec.selector))
    assert.equal(api.spec.ports.length, 1)
    assert.equal(containerPort(api.spec.ports[0].targetPort), c.httpPort)
  })
})

describe('the NetworkPolicy', () => {
  const podLabels = sts.spec.template.metadata.labels
  const rulesFor = (port: number): any[] => policy.spec.ingress.filter((r: any) => r.ports.some((p: any) => containerPort(p.port) === port))

  it('selects the daemons and limits ingress only', () => {
    assert.ok(Object.entries(policy.spec.podSelector.matchLabels).every(([k, v]) => podLabels[k] === v))
    assert.deepEqual(policy.spec.policyTypes, ['Ingress'])
    for (const rule of policy.spec.ingress) {
      assert.ok(Array.isArray(rule.from) && rule.from.length > 0, 'no rule admits everyone')
      assert.ok(Array.isArray(rule.ports) && rule.ports.length > 0, 'every rule names its ports')
    }
  })

  it('opens the P2P ports to Hearth pods (of this set and others)', () => {
    const c = configFor(podEnv())
    for (const port of [c.p2pPort, wsPortFor(c)]) {
      const peers = rulesFor(port).flatMap(r => r.from)
      assert.ok(peers.length > 0, `port ${port} is open to someone`)
      for (const peer of peers) {
        assert.equal(peer.ipBlock, undefined)
        assert.equal(peer.podSelector?.matchLabels?.['app.kubernetes.io/name'], podLabels['app.kubernetes.io/name'], 'only Hearth pods')
      }
    }
  })

  it('opens HTTP only to doorway pods (and a monitoring namespace the operator labels)', () => {
    const c = configFor(podEnv())
    const peers = rulesFor(c.httpPort).flatMap(r => r.from)
    assert.ok(peers.some(p => p.podSelector?.matchLabels?.['hearth.io/doorway'] === 'true' && p.namespaceSelector == null))
    for (const peer of peers) {
      assert.equal(peer.ipBlock, undefined)
      const doorway = peer.podSelector?.matchLabels?.['hearth.io/doorway'] === 'true'
      const labelledNamespace = peer.podSelector == null && Object.keys(peer.namespaceSelector?.matchLabels ?? {}).length > 0
      assert.ok(doorway || labelledNamespace, `unexpected HTTP peer ${JSON.stringify(peer)}`)
    }
  })
})

describe('the example Secret', () => {
  it('holds a placeholder the daemon refuses, so it cannot go live by mistake', () => {
    assert.equal(secret.type, 'Opaque')
    const placeholder = Object.values(secret.stringData)[0] as string
    assert.throws(() => configFor({ ...podEnv(placeholder) }), (err: any) => err.code === ConfigError.code && err.key === 'HEARTH_API_TOKEN')
    assert.match(readFileSync(join(K8S, 'secret.example.yaml'), 'utf8'), /openssl rand -hex 32/)
  })
})
