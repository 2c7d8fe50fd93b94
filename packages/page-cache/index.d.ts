/**
 * Asks the kernel to drop the cached pages of `[offset, offset + length)` of
 * the open file `fd` (length 0: to the end). Clean pages go at once; dirty
 * ones start writing back. Returns false where the system has no such call.
 */
export declare function dropPages (fd: number, offset: number, length: number): boolean

/**
 * How many bytes of `[offset, offset + length)` of the open file `fd` are in
 * the page cache (`offset` a multiple of the page size); -1 when that
 * cannot be told here. Reads nothing.
 */
export declare function cachedBytes (fd: number, offset: number, length: number): number

/**
 * Sets glibc malloc's thresholds: allocations of at least `mmapBytes` get a
 * mapping of their own, and free memory at the top of the heap goes back
 * to the kernel once it exceeds `trimBytes`. Setting them turns off glibc's
 * own adjustment of both. Returns false where the C library is not glibc
 * (nothing changes then) or a value was refused.
 */
export declare function setMallocThresholds (mmapBytes: number, trimBytes: number): boolean
