import { existsSync } from 'node:fs'
import type { BlobStore } from '@hearth/blobstore'
import type { DocumentService } from '../docs/service.js'
import type { TrustService } from './service.js'

/**
 * Why this device's agent cannot be given up to join another one: undefined
 * when it can. It can when this device holds the agent's key and the agent
 * has made nothing but this device's certificates (see
 * {@link TrustService.replaceable}), and the device holds no documents and
 * no pins of that agent: a first-start agent nobody has used yet.
 */
export async function agentInUse (c: { trust: TrustService, docs: DocumentService, blobs: BlobStore }): Promise<string | undefined> {
  const why = c.trust.replaceable()
  if (why != null) return why
  const agent = c.trust.agentId
  if (agent == null) return undefined
  const docs = c.docs.loaded ?? (existsSync(c.docs.path) ? await c.docs.open() : undefined)
  if (docs != null && docs.store.list({ limit: 1 }).length > 0) return `this device holds documents of agent ${agent}`
  if ((await c.blobs.pins({ owner: agent })).length > 0) return `this device holds pins of agent ${agent}`
  return undefined
}
