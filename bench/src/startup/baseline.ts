import { spawnNode } from './spawn.js'
import type { Starter } from './spawn.js'

/**
 * The floor: a bare `node -e` that opens an HTTP server and prints its port,
 * timed the same way as the daemon.
 */
const SCRIPT = `
const http = require('node:http')
const s = http.createServer((req, res) => { res.end('ok') })
s.listen(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port) + '\\n') })
`

export function bareNode (): Starter {
  return {
    name: 'bare node -e',
    start: async () => {
      const proc = spawnNode(['-e', SCRIPT], { PATH: process.env.PATH })
      let port: string | undefined
      proc.stdout?.on('data', d => { port ??= String(d).trim() })
      return { proc, readyUrl: async () => port != null ? `http://127.0.0.1:${port}/` : undefined }
    }
  }
}
