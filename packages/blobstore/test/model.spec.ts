import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Sqlite from 'better-sqlite3'
import fc from 'fast-check'
import { collect, pseudoRandom, tempStore } from './helpers.js'
import type { PinLayer } from '../src/index.js'

type Op =
  | { kind: 'add', size: number, seed: number, layer: PinLayer | 'cache' }
  | { kind: 'pin', which: number, layer: PinLayer, owner?: string }
  | { kind: 'unpin', which: number, layer?: PinLayer }
  | { kind: 'remove', which: number }
  | { kind: 'gc' }
  | { kind: 'read', which: number }

const layer = fc.constantFrom<PinLayer>('sovereign', 'reciprocal', 'invested', 'gift')
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), size: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 1024 * 1024 - 10, max: 1024 * 1024 + 3000 })), seed: fc.integer({ min: 1, max: 6 }), layer: fc.oneof(layer, fc.constant('cache' as const)) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pin' as const), which: fc.nat(), layer, owner: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }) }, { requiredKeys: ['kind', 'which', 'layer'] }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('unpin' as const), which: fc.nat(), layer: fc.option(layer, { nil: undefined }) }, { requiredKeys: ['kind', 'which'] }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gc' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), which: fc.nat() }) }
)

const QUOTAS = { gift: 2 * 1024 * 1024 + 20_000, cache: 1024 * 1024 + 20_000 }

describe('random operation sequences', () => {
  it('keep quotas, pins, reference counts and contents consistent', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
      const t = tempStore({ quotas: QUOTAS })
      // what the model knows for sure: content of every CID ever added, and pins
      const content = new Map<string, Uint8Array>()
      const pins = new Map<string, Set<string>>() // cid -> "layer/owner"
      const cids: string[] = []
      try {
        for (const o of ops) {
          const pick = (n: number): string | undefined => cids.length === 0 ? undefined : cids[n % cids.length]
          try {
            if (o.kind === 'add') {
              const data = pseudoRandom(o.size, o.seed)
              const { cid } = await t.store.add(data, { layer: o.layer })
              const c = cid.toString()
              content.set(c, data)
              if (!cids.includes(c)) cids.push(c)
              if (o.layer !== 'cache') pins.set(c, (pins.get(c) ?? new Set()).add(`${o.layer}/`))
            } else if (o.kind === 'pin') {
              const c = pick(o.which)
              if (c == null) continue
              await t.store.pin(c, { layer: o.layer, owner: o.owner })
              pins.set(c, (pins.get(c) ?? new Set()).add(`${o.layer}/${o.owner ?? ''}`))
            } else if (o.kind === 'unpin') {
              const c = pick(o.which)
              if (c == null) continue
              await t.store.unpin(c, { layer: o.layer })
              for (const p of [...(pins.get(c) ?? [])]) if (o.layer === undefined || p.startsWith(`${o.layer}/`)) pins.get(c)?.delete(p)
            } else if (o.kind === 'remove') {
              const c = pick(o.which)
              if (c == null) continue
              await t.store.remove(c)
              pins.delete(c)
            } else if (o.kind === 'gc') {
              await t.store.gc()
            } else {
              const c = pick(o.which)
              if (c == null) continue
              assert.deepEqual(new Uint8Array(await collect(t.store.cat(c))), content.get(c))
            }
          } catch (err: any) {
            assert.ok(['ERR_QUOTA_EXCEEDED', 'ERR_BLOB_NOT_FOUND'].includes(err?.code), String(err?.code ?? err))
          }

          // invariants after every step
          const u = await t.store.usage()
          assert.equal(u.sessions, 0)
          for (const [l, q] of Object.entries(QUOTAS)) assert.ok(u.layers[l as 'gift'].used_bytes <= q, `${l} over quota`)
          for (const [c, set] of pins) {
            if (set.size === 0) continue
            // a pinned blob is never evicted
            assert.equal(await t.store.has(c), true, `pinned ${c} vanished`)
            const listed = new Set((await t.store.pins({ cid: c })).map(p => `${p.layer}/${p.owner ?? ''}`))
            assert.deepEqual(listed, set)
          }
        }
        await t.store.gc()
        for (const b of await t.store.list({ limit: 1000 })) {
          assert.deepEqual(new Uint8Array(await collect(t.store.cat(b.cid))), content.get(b.cid.toString()))
        }
        assert.equal((await t.store.usage()).blocks.unreferenced, 0)
        await t.store.close()
        const db = new Sqlite(t.path, { readonly: true })
        try {
          const bad = db.prepare(`SELECT COUNT(*) AS n FROM blocks b WHERE refs !=
            (SELECT COUNT(*) FROM root_blocks WHERE block_id = b.id) + (SELECT COUNT(*) FROM temp_blocks WHERE block_id = b.id)`).get() as { n: number }
          assert.equal(bad.n, 0)
          const orphans = db.prepare('SELECT COUNT(*) AS n FROM blocks b WHERE NOT EXISTS (SELECT 1 FROM root_blocks WHERE block_id = b.id)').get() as { n: number }
          assert.equal(orphans.n, 0)
          const noData = db.prepare('SELECT COUNT(*) AS n FROM blocks b WHERE NOT EXISTS (SELECT 1 FROM block_data WHERE id = b.id)').get() as { n: number }
          assert.equal(noData.n, 0)
          const strayData = db.prepare('SELECT COUNT(*) AS n FROM block_data d WHERE NOT EXISTS (SELECT 1 FROM blocks WHERE id = d.id)').get() as { n: number }
          assert.equal(strayData.n, 0)
        } finally {
          db.close()
        }
      } finally {
        await t.cleanup()
      }
    }), { numRuns: 25 })
  })
})
