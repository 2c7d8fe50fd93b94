import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import Sqlite from 'better-sqlite3'
import { createBlobStore } from '../src/index.js'
import { collect, pseudoRandom } from './helpers.js'

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.js', import.meta.url))
const ITERATIONS = Number(process.env.HEARTH_CRASH_ITERATIONS ?? 50)

interface Expected { size: number, seed: number }

/** Runs the child until a random moment after it is ready, then SIGKILLs it */
async function runAndKill (path: string, seed: number, killAfterMs: number): Promise<string[]> {
  const child = spawn(process.execPath, [CHILD, path, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.on('exit', (code, signal) => { resolve({ code, signal }) }))
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (out.includes('READY\n')) { child.stdout.off('data', check); resolve() }
    }
    child.stdout.on('data', check)
    void exited.then(() => { reject(new Error(`child exited early: ${err}`)) })
  })
  await new Promise(resolve => setTimeout(resolve, killAfterMs))
  child.kill('SIGKILL')
  const { signal } = await exited
  assert.equal(signal, 'SIGKILL', `child died by itself: ${err}`)
  return out.split('\n')
}

describe('crash safety', () => {
  it(`SIGKILL during adds, removes and GC (${ITERATIONS} iterations): acknowledged blobs intact, nothing partial, nothing leaked`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-crash-'))
    const path = join(dir, 'blobs.db')
    const mustExist = new Map<string, Expected>()
    const known = new Set<string>()
    let acks = 0
    let midAdd = 0
    let collected = 0
    let rng = 12345
    const rand = (): number => { rng = (rng * 1103515245 + 12345) & 0x7fffffff; return rng / 0x7fffffff }
    try {
      for (let iter = 0; iter < ITERATIONS; iter++) {
        const lines = await runAndKill(path, iter + 1, 20 + Math.floor(rand() * 250))
        let adding = false
        for (const line of lines) {
          const [kind, cid, size, seed] = line.split(' ')
          if (kind === 'ADD') adding = true
          if (kind === 'ACK') { mustExist.set(cid, { size: Number(size), seed: Number(seed) }); acks++; adding = false }
          if (kind === 'RMSTART') mustExist.delete(cid)
        }
        if (adding) midAdd++

        const store = createBlobStore({ path, gcIntervalMs: 0, scrubIntervalMs: 0 })
        try {
          // every acknowledged blob is there and reads back intact (each block re-hashed)
          for (const cid of mustExist.keys()) {
            assert.equal(await store.has(cid), true, `acknowledged ${cid} missing after crash ${iter}`)
          }
          const all = []
          for (let page = await store.list({ limit: 1000 }); page.length > 0; page = await store.list({ after: page[page.length - 1].cid, limit: 1000 })) all.push(...page)
          // no partially visible blob: every blob that appeared since the last
          // crash reads back completely with verified blocks
          for (const b of all) {
            const cid = b.cid.toString()
            if (known.has(cid)) continue
            known.add(cid)
            const bytes = await collect(store.cat(cid))
            assert.equal(bytes.byteLength, b.size)
            const e = mustExist.get(cid)
            if (e != null) assert.deepEqual(new Uint8Array(bytes), pseudoRandom(e.size, e.seed))
          }
          for (const k of [...known]) if (!all.some(b => b.cid.toString() === k)) known.delete(k)
          // after GC nothing is leaked
          if ((await store.gc()).blocksDeleted > 0) collected++
          const u = await store.usage()
          assert.equal(u.sessions, 0)
          assert.equal(u.blocks.unreferenced, 0)
        } finally {
          await store.close()
        }
        const db = new Sqlite(path, { readonly: true })
        try {
          const bad = db.prepare(`SELECT COUNT(*) AS n FROM blocks b WHERE refs !=
            (SELECT COUNT(*) FROM root_blocks WHERE block_id = b.id) + (SELECT COUNT(*) FROM temp_blocks WHERE block_id = b.id)`).get() as { n: number }
          assert.equal(bad.n, 0, 'reference counts agree with memberships')
          const orphans = db.prepare('SELECT COUNT(*) AS n FROM blocks b WHERE NOT EXISTS (SELECT 1 FROM root_blocks WHERE block_id = b.id)').get() as { n: number }
          assert.equal(orphans.n, 0, 'every block belongs to a blob')
          const dangling = db.prepare('SELECT COUNT(*) AS n FROM root_blocks rb WHERE NOT EXISTS (SELECT 1 FROM blocks WHERE id = rb.block_id)').get() as { n: number }
          assert.equal(dangling.n, 0)
        } finally {
          db.close()
        }
      }
      t.diagnostic(`${acks} acknowledged adds; ${midAdd} of ${ITERATIONS} kills landed in the middle of an add; ${collected} left committed blocks of an unfinished add or remove to collect`)
      assert.ok(midAdd > 0, 'some kills landed in the middle of an add')
      assert.ok(collected > 0, 'some kills left committed garbage for GC to find')
      assert.ok(acks > ITERATIONS, `only ${acks} acknowledged adds in ${ITERATIONS} runs`)
      // a final full check of every blob still expected
      const store = createBlobStore({ path, gcIntervalMs: 0, scrubIntervalMs: 0 })
      try {
        for (const [cid, e] of mustExist) assert.deepEqual(new Uint8Array(await collect(store.cat(cid))), pseudoRandom(e.size, e.seed))
        assert.equal((await store.scrub({ bytesPerSecond: 0 })).corrupt, 0)
      } finally {
        await store.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
