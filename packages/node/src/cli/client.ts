import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { defaultDataDir } from '../config/load.js'
import { DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, FILES, PEER_HEADER } from '../constants.js'

export interface ClientOptions {
  api?: string
  token?: string
  data?: string
  env?: Record<string, string | undefined>
}

/** A failure the CLI reports in one line, with an exit code. */
export class CliError extends Error {
  readonly exitCode: number
  readonly code: string
  constructor (code: string, message: string, exitCode = 1) {
    super(message)
    this.code = code
    this.exitCode = exitCode
  }
}

export const EXIT = { ok: 0, error: 1, usage: 2, noDaemon: 3 } as const

export function dataDirOf (opts: ClientOptions): string {
  const env = opts.env ?? process.env
  return opts.data ?? env.HEARTH_DATA ?? defaultDataDir(env)
}

/**
 * Finds the daemon: `--api`, then HEARTH_API_URL, then the `api.json` a
 * running daemon writes into its data folder. With a data folder named
 * (`--data` or HEARTH_DATA) that is the only daemon asked: no `api.json`, or
 * one whose process is gone, is "no daemon running on <folder>" (exit 3),
 * never another daemon on the default port. With neither, the default
 * folder's `api.json`, then the default port.
 */
export function resolveApi (opts: ClientOptions): string {
  return locate(opts).url
}

interface Located {
  url: string
  /** the PeerId the answering daemon must have (from api.json) */
  peerId?: string
}

function locate (opts: ClientOptions): Located {
  const env = opts.env ?? process.env
  if (opts.api != null) return { url: opts.api.replace(/\/+$/, '') }
  if (env.HEARTH_API_URL != null && env.HEARTH_API_URL !== '') return { url: env.HEARTH_API_URL.replace(/\/+$/, '') }
  const named = opts.data != null || (env.HEARTH_DATA != null && env.HEARTH_DATA !== '')
  const dir = dataDirOf(opts)
  const path = join(dir, FILES.apiInfo)
  let info: { url?: unknown, pid?: unknown, peer_id?: unknown } | undefined
  try {
    info = JSON.parse(readFileSync(path, 'utf8'))
  } catch { /* no api.json */ }
  if (info != null && typeof info.url === 'string') {
    if (typeof info.pid === 'number' && !alive(info.pid)) {
      if (named) throw new CliError('ERR_NO_DAEMON', `no daemon running on ${dir} (its api.json names pid ${info.pid}, which has exited). Start one with \`hearth daemon --data ${dir}\`.`, EXIT.noDaemon)
    } else {
      return { url: info.url, ...(typeof info.peer_id === 'string' ? { peerId: info.peer_id } : {}) }
    }
  }
  if (named) throw new CliError('ERR_NO_DAEMON', `no daemon running on ${dir} (no api.json there). Start one with \`hearth daemon --data ${dir}\`, or point --api / HEARTH_API_URL at one.`, EXIT.noDaemon)
  return { url: `http://${DEFAULT_HTTP_HOST}:${DEFAULT_HTTP_PORT}` }
}

/** Whether process `pid` exists (EPERM: it does, as another user) */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err?.code === 'EPERM'
  }
}

function resolveToken (opts: ClientOptions): string | undefined {
  const env = opts.env ?? process.env
  if (opts.token != null) return opts.token
  if (env.HEARTH_API_TOKEN != null && env.HEARTH_API_TOKEN !== '') return env.HEARTH_API_TOKEN
  try {
    return readFileSync(join(dataDirOf(opts), FILES.apiToken), 'utf8').trim()
  } catch {
    return undefined
  }
}

export class HearthClient {
  readonly base: string
  private readonly token: string | undefined

  /** the PeerId api.json names: a daemon answering with another one is not this folder's */
  private readonly peerId: string | undefined

  constructor (opts: ClientOptions) {
    const at = locate(opts)
    this.base = at.url
    this.peerId = at.peerId
    this.token = resolveToken(opts)
  }

  /** A daemon other than the one api.json names answered (its port was taken over after a crash) */
  private check (peer: string | null | undefined): void {
    if (this.peerId == null || peer == null || peer === this.peerId) return
    throw new CliError('ERR_NO_DAEMON', `the daemon at ${this.base} is ${peer}, not ${this.peerId} that this data folder's api.json names: this folder's daemon is not running`, EXIT.noDaemon)
  }

  async request<T> (method: string, path: string, body?: unknown): Promise<{ status: number, body: T }> {
    const headers: Record<string, string> = { accept: 'application/json' }
    // reads carry the token too: private documents need it
    if (this.token != null) headers.authorization = `Bearer ${this.token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(30_000)
      })
    } catch (err: any) {
      const cause = err?.cause?.code ?? err?.cause?.message ?? err?.name
      throw new CliError('ERR_NO_DAEMON',
        `no Hearth daemon answers at ${this.base} (${cause ?? 'unreachable'}). Start one with \`hearth daemon\`, or point --api / HEARTH_API_URL at it.`,
        EXIT.noDaemon)
    }
    this.check(res.headers.get(PEER_HEADER))
    const text = await res.text()
    let parsed: any
    try { parsed = text === '' ? undefined : JSON.parse(text) } catch { parsed = text }
    return { status: res.status, body: parsed as T }
  }

  /**
   * A streaming request over node:http: `body` is piped with backpressure and
   * the response comes back unread, so transfers of any size stay in
   * constant memory.
   */
  async stream (method: string, path: string, opts: { body?: Readable, headers?: Record<string, string> } = {}): Promise<IncomingMessage> {
    const url = new URL(this.base + path)
    const headers: Record<string, string> = { ...opts.headers }
    if (this.token != null) headers.authorization = `Bearer ${this.token}`
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    return await new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { method, headers }, res => {
        try {
          this.check(res.headers[PEER_HEADER] as string | undefined)
        } catch (err) {
          res.resume()
          reject(err)
          return
        }
        resolve(res)
      })
      req.on('error', (err: any) => {
        reject(err?.code === 'ECONNREFUSED' || err?.code === 'ENOTFOUND'
          ? new CliError('ERR_NO_DAEMON', `no Hearth daemon answers at ${this.base} (${err.code}). Start one with \`hearth daemon\`, or point --api / HEARTH_API_URL at it.`, EXIT.noDaemon)
          : err)
      })
      if (opts.body != null) {
        opts.body.on('error', err => req.destroy(err))
        opts.body.pipe(req)
      } else {
        req.end()
      }
    })
  }

  /** Reads a JSON error body of a failed streaming response into a CliError. */
  async failure (res: IncomingMessage): Promise<CliError> {
    let text = ''
    for await (const chunk of res) { text += String(chunk); if (text.length > 64 * 1024) break }
    let body: { error?: string, message?: string } | undefined
    try { body = JSON.parse(text) } catch { body = undefined }
    return new CliError(body?.error ?? `HTTP_${res.statusCode}`, body?.message ?? `HTTP ${res.statusCode}`)
  }

  /** Like request(), but any non-2xx becomes a CliError carrying the API's code and message. */
  async call<T> (method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request<T>(method, path, body)
    if (res.status >= 200 && res.status < 300) return res.body
    const err = res.body as { error?: string, message?: string } | undefined
    const hint = res.status === 401 ? ' (set HEARTH_API_TOKEN or --token, or run on the daemon\'s machine so the token file is found)' : ''
    throw new CliError(err?.error ?? `HTTP_${res.status}`, `${err?.message ?? `HTTP ${res.status}`}${hint}`)
  }
}
