import { readSync } from 'node:fs'

/** An incremental BLAKE3 hasher (the `blake3` package's) */
export interface LeafHasher {
  update: (bytes: Uint8Array) => unknown
  digest: () => Uint8Array
}

/** Bytes per read: small enough that the hash reads them from L2, large enough that a read is cheap */
const PIECE = 64 * 1024
const scratch = new Uint8Array(PIECE)

/**
 * Hashes [position, position + length) of `fd`, read through one scratch
 * buffer with positional reads of 64 KiB, hashing each piece with
 * BLAKE3 while it is still in this core's cache: the way `b3sum --no-mmap`
 * reads. Hashing a 1 MiB buffer that another thread just filled runs at
 * about half that speed. Stops early at the end of the file. Blocking: what
 * `hashFile` runs, in short runs, when the leaf-hash addon cannot load.
 */
function readHashed (createHasher: () => LeafHasher, fd: number, position: number, length: number): { digest: Uint8Array, bytes: number } {
  const hasher = createHasher()
  let done = 0
  while (done < length) {
    const want = Math.min(PIECE, length - done)
    const target = scratch.subarray(0, want)
    let got = 0
    while (got < want) {
      const n = readSync(fd, target, got, want - got, position + done + got)
      if (n === 0) break
      got += n
    }
    if (got > 0) hasher.update(target.subarray(0, got))
    done += got
    if (got < want) break
  }
  return { digest: new Uint8Array(hasher.digest()), bytes: done }
}

/** `count` leaves of `leafSize` from `position`: their digests end to end, and each one's size (the list ends at a short leaf) */
export function readDigests (createHasher: () => LeafHasher, fd: number, position: number, leafSize: number, count: number): { digests: Uint8Array<ArrayBuffer>, sizes: number[] } {
  const digests = new Uint8Array(count * 32)
  const sizes: number[] = []
  for (let i = 0; i < count; i++) {
    const { digest, bytes } = readHashed(createHasher, fd, position + i * leafSize, leafSize)
    digests.set(digest, i * 32)
    sizes.push(bytes)
    if (bytes < leafSize) break
  }
  return { digests, sizes }
}
