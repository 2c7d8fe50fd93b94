import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { isDiskFull } from '@hearth/blobstore'
import type { Logger } from '@hearth/trust'
import { buildApi, openReadsFor } from './api/index.js'
import { isLoopbackHost } from './api/security.js'
import type { HearthConfig } from './config/spec.js'
import { FILES } from './constants.js'
import { DaemonAlreadyRunningError } from './errors.js'
import type { HearthLogger } from './logger.js'
import { HearthNode } from './node.js'
import { VERSION } from './version.js'

export interface ApiInfo {
  url: string
  pid: number
  peer_id: string
  started_at: string
}

export interface RunningDaemon {
  node: HearthNode
  app: FastifyInstance
  url: string
  /** stops HTTP, then the node, and removes api.json; bounded by the config's shutdown timeout */
  stop: () => Promise<void>
}

/**
 * Starts a node and its HTTP API, and writes `api.json` so the CLI and
 * scripts can find it. Signals are the caller's business (see
 * {@link handleSignals}); tests call `stop()` directly.
 */
export async function startDaemon (config: HearthConfig, logger: HearthLogger): Promise<RunningDaemon> {
  const log = logger.forComponent('hearth:daemon')
  const infoPath = join(config.dataDir, FILES.apiInfo)
  await refuseIfRunning(infoPath)

  const node = new HearthNode(config, { logger })
  let app: FastifyInstance | undefined
  try {
    await node.start()
    app = await buildApi({ node, log: logger.forComponent('hearth:http'), version: VERSION, logDropped: logger.dropped })
    await app.listen({ host: config.httpHost, port: config.httpPort })
  } catch (err) {
    await app?.close().catch(() => {})
    await node.stop().catch(() => {})
    throw err
  }
  const address = app.server.address()
  const port = typeof address === 'object' && address != null ? address.port : config.httpPort
  const url = `http://${config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost}:${port}`
  const info: ApiInfo = { url, pid: process.pid, peer_id: node.peerId.toString(), started_at: node.startedAt.toISOString() }
  const tmp = `${infoPath}.${process.pid}.tmp`
  try {
    await writeFile(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 })
    await rename(tmp, infoPath)
  } catch (err: any) {
    // a full disk must not stop the daemon that can free it: the CLI then needs --api
    await rm(tmp, { force: true }).catch(() => {})
    if (isDiskFull(err)) node.disk?.markFull('api.json')
    log.error({ err: err?.code ?? err?.message, path: infoPath }, `could not write api.json: the CLI needs --api ${url} (or HEARTH_API_URL)`)
  }
  log.info({ url, peer_id: info.peer_id, data: config.dataDir, p2p: config.enableP2p }, 'hearth daemon ready')
  if (openReadsFor(config) && !isLoopbackHost(config.httpHost)) {
    log.warn({ http_host: config.httpHost }, 'reads are open to anyone who can reach this address: pins, blobs, public documents and who is who in /p2p/status and /trust. Set HEARTH_OPEN_READS=false and give readers a token (hearth token create --scope read)')
  }

  let stopping: Promise<void> | undefined
  const started = app
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping')
      await started.close().catch(err => { log.warn({ err: err.message }, 'HTTP close failed') })
      await node.stop()
      await rm(infoPath, { force: true })
      log.info('stopped')
    })()
    return await stopping
  }
  return { node, app, url, stop }
}

async function refuseIfRunning (infoPath: string): Promise<void> {
  let info: Partial<ApiInfo>
  try {
    info = JSON.parse(await readFile(infoPath, 'utf8'))
  } catch {
    return
  }
  if (typeof info.pid !== 'number' || info.pid === process.pid) return
  try {
    process.kill(info.pid, 0)
  } catch {
    return // stale file from a process that is gone
  }
  throw new DaemonAlreadyRunningError(`a daemon (pid ${info.pid}) already runs on this data folder at ${info.url}`)
}

/**
 * SIGTERM or SIGINT stops the daemon gracefully within `timeoutMs`; past
 * that, or on a second signal, the process exits at once.
 */
export function handleSignals (daemon: RunningDaemon, log: Logger, timeoutMs: number, exit: (code: number) => void = process.exit): void {
  let received = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) {
      log.warn({ signal }, 'second signal: exiting now')
      exit(130)
      return
    }
    received = true
    log.info({ signal, timeout_ms: timeoutMs }, 'shutting down')
    const timer = setTimeout(() => {
      log.error({ timeout_ms: timeoutMs }, 'graceful stop took too long: exiting')
      exit(1)
    }, timeoutMs)
    timer.unref()
    daemon.stop().then(() => {
      clearTimeout(timer)
      exit(0)
    }, err => {
      log.error({ err: err?.message }, 'stop failed')
      exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
