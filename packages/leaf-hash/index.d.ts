/**
 * BLAKE3 digests of `count` leaves of `leafSize` bytes of the open file
 * `fd`, from `position`, computed on libuv's thread pool: each leaf is read
 * 64 KiB at a time and every piece is hashed right after its read. The
 * digests lie end to end (32 bytes each) and `sizes` gives each leaf's
 * length; the list ends early at the end of the file (a short leaf, or none
 * past it). A failed read rejects with the system error (`code` such as
 * `EBADF`, `errno`).
 */
export declare function hashLeaves (fd: number, position: number, leafSize: number, count: number): Promise<{ digests: Uint8Array, sizes: number[] }>

/**
 * Reads `target.byteLength` bytes of the open file `fd` from `position` into
 * `target` on libuv's thread pool, hashing each 64 KiB piece as it arrives,
 * and resolves with how many bytes were read (fewer at the end of the file)
 * and their BLAKE3 digest. The caller must neither touch nor transfer
 * `target` until the promise settles.
 */
export declare function readHashed (fd: number, target: Uint8Array, position: number): Promise<{ bytesRead: number, digest: Uint8Array }>

/** BLAKE3 of `bytes`, on the calling thread (the same C implementation) */
export declare function hashBytes (bytes: Uint8Array): Uint8Array
