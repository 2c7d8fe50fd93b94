/**
 * @packageDocumentation
 *
 * `@hearth/trust` holds identities and the statements between them: agent
 * and device keys (Ed25519), device certificates, signed attestations, and
 * the trust graph that decides who may write and whose content a node
 * replicates. It does no I/O beyond its key files and its own SQLite tables.
 */
export { generateKeyPair, keyPairFromSecret, readKeyFile, writeKeyFile, loadOrCreateKeyFile } from './keys.js'
export type { KeyPair } from './keys.js'
export type { Logger, ComponentLogger } from './logger.js'
export { InvalidKeyFileError } from './errors.js'
export { ed } from './ed25519.js'
