import { createHash } from 'node:crypto'

/** A node that may hold a replica, with the labels of its failure domain. */
export interface Candidate {
  device: string
  labels: Record<string, string>
}

/** Labels that make a failure domain, widest first. */
export const DOMAIN_KEYS = ['region', 'cluster', 'rack'] as const

export function domainOf (labels: Record<string, string>): string {
  return DOMAIN_KEYS.map(k => labels[k] ?? '').join('/')
}

/**
 * Chooses `target` holders for a root among live candidates, the same way on
 * every node that knows the same candidates: candidates are ranked by a hash
 * of (root, device) (rendezvous hashing, so a departure moves only the roots
 * that node held), then taken in rank order preferring a failure domain not
 * yet used; when there are fewer domains than copies, the best-ranked of the
 * rest fill in.
 */
export function chooseHolders (root: string, candidates: Candidate[], target: number): Candidate[] {
  const ranked = [...candidates].sort((a, b) => score(root, a.device).localeCompare(score(root, b.device)))
  const chosen: Candidate[] = []
  const domains = new Set<string>()
  for (const c of ranked) {
    if (chosen.length >= target) break
    const d = domainOf(c.labels)
    if (!domains.has(d)) { chosen.push(c); domains.add(d) }
  }
  for (const c of ranked) {
    if (chosen.length >= target) break
    if (!chosen.includes(c)) chosen.push(c)
  }
  return chosen
}

function score (root: string, device: string): string {
  return createHash('sha256').update(root).update('\0').update(device).digest('hex')
}
