import type { TrustGraph } from '@hearth/trust'

/**
 * Whether `b` is linked to `a` in the trust graph: the same agent, a
 * relationship `a` attested (what `b` says of `a` alone does not count:
 * anyone can sign a statement about anyone), or a storage grant either way
 * (the grantor holds `a`'s replicas, so it must read them). Block serving,
 * document offers and the peer policy follow these links.
 */
export function agentsLinked (graph: TrustGraph, a: string, b: string): boolean {
  if (a === b) return true
  if (graph.grantsGiven(a).some(g => g.grantee === b)) return true
  if (graph.grantsReceived(a).some(g => g.grantor === b)) return true
  return graph.relationships(a).some(r => r.agent === b && r.outgoing != null)
}

/**
 * Whether `b` is vouched for by `self` or by an agent linked to `self`: one
 * of them attested a relationship with `b` or granted it storage. An agent
 * made up on the spot is vouched for by nobody.
 */
export function agentVouched (graph: TrustGraph, self: string, b: string): boolean {
  const linked = (x: string): boolean => agentsLinked(graph, self, x)
  return graph.relationships(b).some(r => r.incoming != null && linked(r.agent)) ||
    graph.grantsReceived(b).some(g => linked(g.grantor))
}
