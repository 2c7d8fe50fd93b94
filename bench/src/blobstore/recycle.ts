import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs'

/**
 * Writes `bytes` into a scratch file and deletes it, so that the writes
 * timed right after it take page-cache pages that were in use a moment ago.
 *
 * On these VMs memory that has been free for a while is handed back to the
 * host, and taking it again costs a host fault per page: `cp` of 1 GiB into
 * such memory took 3.7-5.5 s (2.4 s of it system time), right after this
 * step 0.9-1.2 s, in the same minute. Which contender met which kind of
 * memory depended on how long the previous one's deleted output had been
 * free, not on the software. Each ingest contender (`cp` in the runner, the
 * stores in their child processes) calls this immediately before its timed
 * span. Nothing is written back: the file is deleted while its pages are
 * still dirty.
 */
export function recycleFreshMemory (scratchPath: string, bytes: number): void {
  const piece = Buffer.alloc(1024 * 1024, 0xa5)
  const fd = openSync(scratchPath, 'w')
  try {
    for (let done = 0; done < bytes; done += piece.length) writeSync(fd, piece)
  } finally {
    closeSync(fd)
    unlinkSync(scratchPath)
  }
}
