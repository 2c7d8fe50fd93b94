// The OpenAPI schemas that kubernetes-models validates against allow unknown
// properties, so a misspelt field (`publishNotReadyAdresses`) would pass and
// then be dropped by the API server. The same package's TypeScript types list
// every field exactly: type-checking each manifest as an object literal of its
// kind's interface reports any property the kind does not have.
import { join } from 'node:path'
import ts from 'typescript'
import { NODE_PKG } from './deploy-helpers.js'

const INTERFACES: Record<string, { module: string, type: string }> = {
  'apps/v1/StatefulSet': { module: 'kubernetes-models/apps/v1/StatefulSet', type: 'IStatefulSet' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', type: 'IService' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  'networking.k8s.io/v1/NetworkPolicy': { module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', type: 'INetworkPolicy' }
}

/** Type errors (unknown fields first of all) of each manifest against its kind's interface; empty when all fit. */
export function unknownFields (manifests: Array<{ apiVersion: string, kind: string, obj: unknown }>): string[] {
  // placed in the package so that `kubernetes-models` resolves from its node_modules
  const file = join(NODE_PKG, '__deploy_manifests__.ts')
  const lines: string[] = []
  manifests.forEach((m, i) => {
    const target = INTERFACES[`${m.apiVersion}/${m.kind}`]
    if (target == null) throw new Error(`no TypeScript interface for ${m.apiVersion} ${m.kind}`)
    lines.push(`import type { ${target.type} as T${i} } from '${target.module}'`)
    lines.push(`export const m${i}: T${i} = ${JSON.stringify(m.obj)}`)
  })
  const text = lines.join('\n') + '\n'
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: []
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, lang, ...rest) => name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest)
  const fileExists = host.fileExists.bind(host)
  host.fileExists = name => name === file || fileExists(name)
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program)
    .filter(d => d.file?.fileName === file || d.file == null)
    .map(d => {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n')
      if (d.file == null || d.start == null) return msg
      const line = d.file.getLineAndCharacterOfPosition(d.start).line
      const i = Math.floor(line / 2)
      return `${String(manifests[i]?.kind)} #${i}: ${msg}`
    })
}
