import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ed } from './ed25519.js'
import { InvalidKeyFileError } from './errors.js'

/** An Ed25519 key pair; `secretKey` is the 32-byte RFC 8032 seed. */
export interface KeyPair {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
}

const KEY_FILE_TYPE = 'hearth-ed25519-key'
const KEY_FILE_VERSION = 1

export function generateKeyPair (): KeyPair {
  return keyPairFromSecret(ed.utils.randomSecretKey())
}

// PKCS#8 header of an Ed25519 private key; the 32-byte seed follows it
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

export function keyPairFromSecret (secretKey: Uint8Array): KeyPair {
  if (secretKey.length !== 32) {
    throw new InvalidKeyFileError(`an Ed25519 secret key is 32 bytes, got ${secretKey.length}`)
  }
  // Derived with Node's native Ed25519: noble's first scalar multiplication
  // builds its precomputed tables, which cost ~100 ms of daemon start-up.
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, secretKey]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
  return { secretKey: Uint8Array.from(secretKey), publicKey: new Uint8Array(spki.subarray(spki.length - 32)) }
}

/**
 * Reads a key file written by {@link writeKeyFile}. The file's public key
 * must match its secret, so a truncated or edited file is refused rather than
 * silently yielding another identity. Permissions wider than 0600 (for
 * instance after a volume's fsGroup was applied) are tightened again.
 */
export async function readKeyFile (path: string): Promise<KeyPair> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch (err: any) {
    if (err?.code === 'ENOENT') throw err
    throw new InvalidKeyFileError(`key file ${path} is not valid JSON`)
  }
  const file = parsed as Record<string, unknown>
  if (file == null || typeof file !== 'object' || file.type !== KEY_FILE_TYPE || file.version !== KEY_FILE_VERSION ||
      typeof file.secret_key !== 'string' || typeof file.public_key !== 'string') {
    throw new InvalidKeyFileError(`key file ${path} is not a ${KEY_FILE_TYPE} v${KEY_FILE_VERSION} file`)
  }
  const pair = keyPairFromSecret(Buffer.from(file.secret_key, 'base64url'))
  if (Buffer.from(pair.publicKey).toString('base64url') !== file.public_key) {
    throw new InvalidKeyFileError(`key file ${path}: public key does not match the secret key`)
  }
  const { mode } = await stat(path)
  if ((mode & 0o077) !== 0) await chmod(path, 0o600)
  return pair
}

/**
 * Writes a key file with mode 0600 inside a 0700 folder. The write goes to a
 * temporary file that is synced and renamed over the target, so a crash never
 * leaves a half-written key behind.
 */
export async function writeKeyFile (path: string, pair: KeyPair): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  const body = JSON.stringify({
    type: KEY_FILE_TYPE,
    version: KEY_FILE_VERSION,
    public_key: Buffer.from(pair.publicKey).toString('base64url'),
    secret_key: Buffer.from(pair.secretKey).toString('base64url')
  }, null, 2) + '\n'
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(body)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, path)
  const dirHandle = await open(dir, 'r')
  try { await dirHandle.sync() } finally { await dirHandle.close() }
}

/** Loads the key at `path`, creating it on first use. */
export async function loadOrCreateKeyFile (path: string): Promise<{ keyPair: KeyPair, created: boolean }> {
  try {
    return { keyPair: await readKeyFile(path), created: false }
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err
  }
  const keyPair = generateKeyPair()
  await writeKeyFile(path, keyPair)
  return { keyPair, created: true }
}
