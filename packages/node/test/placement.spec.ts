import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { domainOf, place } from '../src/replication/placement.js'
import type { Candidate } from '../src/replication/placement.js'

const own = (device: string, cluster = '', extra: Partial<Candidate> = {}): Candidate => ({ device, agent: 'me', labels: cluster === '' ? {} : { cluster }, rule: 'own-device', ...extra })
const granted = (device: string, cluster = '', extra: Partial<Candidate> = {}): Candidate => ({ device, agent: 'friend', labels: cluster === '' ? {} : { cluster }, rule: 'grant', grant: 'g1', ...extra })

describe('placement', () => {
  it('ranks the owner\'s own devices ahead of granting nodes, and takes them first', () => {
    for (let i = 0; i < 50; i++) {
      const root = `root-${i}`
      const p = place(root, [granted('g-a'), own('o-a'), granted('g-b'), own('o-b')], 2, [{ device: 'origin', labels: {} }])
      assert.deepEqual(p.ranked.slice(0, 2).map(c => c.rule), ['own-device', 'own-device'])
      assert.deepEqual(p.chosen.sort(), ['o-a', 'o-b'])
      assert.deepEqual(p.ranked.map(c => c.rank), [1, 2, 3, 4])
      assert.ok(p.ranked.filter(c => !c.chosen).every(c => c.reason === 'ranked-out'))
    }
  })

  it('spreads copies over failure domains, the origin\'s counting as taken, across own devices and granting nodes together', () => {
    // two own devices beside the laptop (same cluster), one granting node elsewhere
    const p = place('r', [own('o-a', 'home'), own('o-b', 'home'), granted('g', 'grandma')], 2, [{ device: 'laptop', labels: { cluster: 'home' } }])
    assert.ok(p.chosen.includes('g'), 'the only other domain gets a copy')
    assert.equal(p.chosen.length, 2)
    // with more domains than copies, one own device in the origin's domain is passed over for a distinct one
    const q = place('r', [own('same', 'home'), own('far', 'office'), granted('g', 'grandma')], 2, [{ device: 'laptop', labels: { cluster: 'home' } }])
    assert.deepEqual(q.chosen.sort(), ['far', 'g'])
    const same = q.ranked.find(c => c.device === 'same')!
    assert.equal(same.chosen, false)
    assert.equal(same.reason, same.rank < q.ranked.find(c => c.device === 'g')!.rank ? 'domain-taken' : 'ranked-out')
    assert.equal(same.reason, 'domain-taken', 'an own device ranks ahead of the granting node it lost to')
  })

  it('never chooses an excluded candidate, and says why', () => {
    const p = place('r', [own('declined', '', { excluded: 'declined' }), own('quiet', '', { excluded: 'unreachable' }), own('bad', '', { excluded: 'failed-proof' }), own('full', '', { excluded: 'over-quota' }), granted('g')], 2)
    assert.deepEqual(p.chosen, ['g'])
    assert.deepEqual(Object.fromEntries(p.ranked.map(c => [c.device, c.reason])), { declined: 'declined', quiet: 'unreachable', bad: 'failed-proof', full: 'over-quota', g: 'chosen' })
  })

  it('counts live origins beyond the first as copies, and leaves origins out of the candidates', () => {
    const cands = [own('a'), own('b'), own('c')]
    assert.equal(place('r', cands, 2, [{ device: 'a', labels: {} }]).need, 2)
    const two = place('r', cands, 2, [{ device: 'a', labels: {} }, { device: 'b', labels: {} }])
    assert.equal(two.need, 1)
    assert.deepEqual(two.chosen, ['c'])
    assert.ok(!two.ranked.some(c => c.device === 'a' || c.device === 'b'))
    // an origin that went quiet is no copy to count on
    assert.equal(place('r', cands, 2, [{ device: 'a', labels: {}, live: false }, { device: 'b', labels: {} }]).need, 2)
  })

  it('decides the same way on every node, whatever order it learnt the candidates in', () => {
    fc.assert(fc.property(
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.uniqueArray(fc.record({ device: fc.string({ minLength: 1, maxLength: 8 }), cluster: fc.constantFrom('', 'a', 'b', 'c'), own: fc.boolean(), out: fc.boolean() }), { selector: r => r.device, maxLength: 8 }),
      fc.integer({ min: 0, max: 4 }),
      (root, specs, target) => {
        const cands = specs.map(s => (s.own ? own : granted)(s.device, s.cluster, s.out ? { excluded: 'unreachable' } : {}))
        const a = place(root, cands, target)
        const b = place(root, [...cands].reverse(), target)
        assert.deepEqual(a.chosen, b.chosen)
        assert.deepEqual(a.ranked.map(c => [c.device, c.rank, c.reason]), b.ranked.map(c => [c.device, c.rank, c.reason]))
        assert.equal(a.chosen.length, Math.min(target, specs.filter(s => !s.out).length))
      }
    ), { numRuns: 300 })
  })

  it('uses as many distinct failure domains as it can, never an origin\'s while another is free, and each one\'s best-ranked node', () => {
    fc.assert(fc.property(
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.uniqueArray(fc.record({ device: fc.string({ minLength: 1, maxLength: 8 }), cluster: fc.constantFrom('', 'a', 'b', 'c', 'd'), own: fc.boolean(), out: fc.boolean() }), { selector: r => r.device, maxLength: 10 }),
      fc.constantFrom('', 'a', 'b'),
      fc.integer({ min: 1, max: 4 }),
      (root, specs, originCluster, target) => {
        const cands = specs.filter(s => s.device !== 'origin').map(s => (s.own ? own : granted)(s.device, s.cluster, s.out ? { excluded: 'unreachable' } : {}))
        const p = place(root, cands, target, [{ device: 'origin', labels: originCluster === '' ? {} : { cluster: originCluster } }])
        const eligible = p.ranked.filter(c => c.excluded == null)
        const chosen = eligible.filter(c => c.chosen)
        const originDomain = domainOf(originCluster === '' ? {} : { cluster: originCluster })
        const freeDomains = new Set(eligible.map(c => c.domain).filter(d => d !== originDomain))
        const chosenFree = new Set(chosen.map(c => c.domain).filter(d => d !== originDomain))
        assert.equal(chosenFree.size, Math.min(target, freeDomains.size), `${chosenFree.size} distinct domains used of ${freeDomains.size} free`)
        if (freeDomains.size >= target) assert.ok(chosen.every(c => c.domain !== originDomain), 'a copy beside the origin while another domain was free')
        for (const d of chosenFree) {
          const best = eligible.find(c => c.domain === d)!
          assert.ok(best.chosen, `domain ${d}: its best-ranked node ${best.device} was passed over`)
        }
      }
    ), { numRuns: 500 })
  })
})
