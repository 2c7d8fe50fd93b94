import type { TrustGraph } from '@hearth/trust'

/**
 * Whether two agents are linked in the trust graph: the same agent, a
 * relationship between them (either way), or a storage grant (either way).
 * Block serving and document offers both follow these links.
 */
export function agentsLinked (graph: TrustGraph, a: string, b: string): boolean {
  if (a === b) return true
  if (graph.grantsGiven(a).some(g => g.grantee === b)) return true
  if (graph.grantsReceived(a).some(g => g.grantor === b)) return true
  return graph.relationships(a).some(r => r.agent === b)
}
