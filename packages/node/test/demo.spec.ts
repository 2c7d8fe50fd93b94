import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { waitFor } from './helpers.js'

const DEMO = fileURLToPath(new URL('../../../../scripts/demo.mjs', import.meta.url))

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch { return false }
}

describe('pnpm demo', () => {
  it('starts three daemons, sets up agents, relationships and grants, and exits 0 once two proven copies hold the 20 MiB file; cleans up', async () => {
    const { runDemo } = await import(DEMO)
    const lines: string[] = []
    let started: { work: string, pids: number[] } | undefined
    const code = await runDemo({ print: (l: string) => lines.push(l), onStarted: (s: typeof started) => { started = s }, timeoutMs: 150_000 })
    assert.equal(code, 0, lines.join('\n'))
    const text = lines.join('\n')
    assert.match(text, /hearth trust grant .* --layer reciprocal --quota 1GiB/)
    assert.match(text, /home-server proved its copy/)
    assert.match(text, /grandma-rack proved its copy/)
    assert.match(text, /target met: 2 of 2 copies confirmed/)
    assert.ok(started != null)
    assert.equal(existsSync(started.work), false, 'the temp folder is gone')
    for (const pid of started.pids) assert.equal(alive(pid), false, `daemon ${pid} stopped`)
  })

  it('on Ctrl-C stops its daemons, removes its temp folder and exits non-zero', async () => {
    const child = spawn(process.execPath, [DEMO, '--size', '4MiB'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += String(d) })
    child.stderr.on('data', d => { out += String(d) })
    const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
    await waitFor(() => /started Grandma's rack/.test(out), 60_000, 'the three daemons to start')
    const work = /working in (\S+)/.exec(out)![1]
    const pids = [...out.matchAll(/pid (\d+)/g)].map(m => Number(m[1]))
    assert.equal(pids.length, 3)
    child.kill('SIGINT')
    assert.equal(await exited, 130, out)
    assert.equal(existsSync(work), false, 'the temp folder is gone')
    for (const pid of pids) assert.equal(alive(pid), false, `daemon ${pid} stopped`)
  })
})
