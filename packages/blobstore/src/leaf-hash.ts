import { optionalAddon } from './optional-addon.js'

/** `@hearth/leaf-hash`: BLAKE3 of file leaves on libuv's thread pool */
export interface LeafHashAddon {
  hashLeaves: (fd: number, position: number, leafSize: number, count: number) => Promise<{ digests: Uint8Array, sizes: number[] }>
  readHashed: (fd: number, target: Uint8Array, position: number) => Promise<{ bytesRead: number, digest: Uint8Array }>
  hashBytes: (bytes: Uint8Array) => Uint8Array
}

/**
 * The addon, loaded on first use; null where it was not built or cannot
 * load (then files are read and hashed on the calling thread, slower).
 */
export const leafHashAddon = optionalAddon<LeafHashAddon>('@hearth/leaf-hash')

/**
 * BLAKE3 digests that a source computed while it read a chunk, keyed by the
 * chunk object it yielded (`fileSource` with the addon). Module-private: only
 * this package's own readers put digests here, so a caller's source cannot
 * name a digest for bytes it did not hash.
 */
const readDigests = new WeakMap<Uint8Array, Uint8Array>()

export function notePrehashed (chunk: Uint8Array, digest: Uint8Array): void {
  readDigests.set(chunk, digest)
}

/** The BLAKE3 digest noted for exactly this chunk object, once */
export function takePrehashed (chunk: Uint8Array): Uint8Array | undefined {
  const d = readDigests.get(chunk)
  if (d !== undefined) readDigests.delete(chunk)
  return d
}
