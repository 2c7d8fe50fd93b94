import type { FastifyInstance } from 'fastify'
import { API_SCHEMA_VERSION, SUPPORTED_API_SCHEMA_VERSIONS } from '../constants.js'
import { HttpError } from './error-handler.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** set for routes whose 2xx answer is a JSON view: it carries schema_version */
    view?: boolean
  }
}

/** Whether a client that asks for `asked` (major, or major.minor) can be served a view of `served` */
function serves (asked: string, served: string): boolean {
  const m = /^(\d{1,4})(?:\.(\d{1,4}))?$/.exec(asked.trim())
  if (m == null) return false
  const [major, minor] = served.split('.').map(Number)
  return Number(m[1]) === major && (m[2] == null || Number(m[2]) <= minor)
}

/**
 * One schema version for every JSON view, both ways. Every route whose 2xx
 * answer is a JSON object gets `schema_version` in its response schema and
 * its answer (routes that set it themselves keep theirs), and every answer
 * the `X-Schema-Version` header. A request that sends `X-Schema-Version` the
 * daemon cannot serve (another major, or a newer minor) is refused before it
 * runs: 400 ERR_UNSUPPORTED_SCHEMA_VERSION with `X-Supported-Schema-Versions`.
 * Must be installed before the routes.
 */
export function installSchemaVersion (app: FastifyInstance): void {
  app.addHook('onRoute', route => {
    const response = route.schema?.response as Record<string, any> | undefined
    if (response == null || route.schema?.hide === true) return
    let view = false
    for (const [code, schema] of Object.entries(response)) {
      if (!/^2/.test(code) || schema?.type !== 'object' || schema.properties == null) continue
      view = true
      if (schema.properties.schema_version == null) {
        response[code] = { ...schema, properties: { schema_version: { type: 'string', description: `the version of this view (${API_SCHEMA_VERSION})` }, ...schema.properties } }
      }
    }
    if (view) route.config = { ...route.config, view: true }
  })

  app.addHook('onRequest', async (req, reply) => {
    const asked = req.headers['x-schema-version']
    if (asked == null) return
    const value = Array.isArray(asked) ? asked[0] : asked
    if (SUPPORTED_API_SCHEMA_VERSIONS.some(v => serves(value, v))) return
    void reply.header('X-Supported-Schema-Versions', SUPPORTED_API_SCHEMA_VERSIONS.join(', '))
    throw new HttpError('ERR_UNSUPPORTED_SCHEMA_VERSION', `this daemon serves schema version ${SUPPORTED_API_SCHEMA_VERSIONS.join(', ')} of its views, not ${JSON.stringify(value.slice(0, 32))}`)
  })

  app.addHook('preSerialization', async (req, reply, payload: unknown) => {
    if (req.routeOptions.config?.view !== true || reply.statusCode >= 300) return payload
    if (payload == null || typeof payload !== 'object' || Array.isArray(payload) || Buffer.isBuffer(payload)) return payload
    if ('schema_version' in payload) return payload
    return { schema_version: API_SCHEMA_VERSION, ...payload }
  })
}
