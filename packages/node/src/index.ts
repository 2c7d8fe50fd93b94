/**
 * @packageDocumentation
 *
 * `@hearth/node` is the Hearth daemon: the libp2p host, the HTTP API that
 * doorways and the CLI use, configuration, and the `hearth` command.
 */
import './polyfill.js'

export { HearthNode } from './node.js'
export type { HearthNodeComponents, P2PStatus, PeerView, Readiness } from './node.js'
export { buildApi, HTTP_LIMITS } from './api/index.js'
export type { BuildApiInit, ApiServices } from './api/index.js'
export { loadConfig, defaultDataDir } from './config/load.js'
export { OPTIONS as CONFIG_OPTIONS } from './config/spec.js'
export type { HearthConfig, LogLevel } from './config/spec.js'
export { startDaemon, handleSignals } from './daemon.js'
export type { RunningDaemon, ApiInfo } from './daemon.js'
export { createLogger, silentLogger } from './logger.js'
export type { HearthLogger } from './logger.js'
export * from './errors.js'
export { VERSION } from './version.js'
