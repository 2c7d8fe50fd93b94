import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBlockStore, SqliteBlockStore } from '../src/index.js'
import { blockStoreTests } from '../src/test-suite.js'

blockStoreTests({
  name: 'MemoryBlockStore',
  setup: async () => new MemoryBlockStore(),
  teardown: async () => {}
})

const dirs = new Map<SqliteBlockStore, string>()
blockStoreTests({
  name: 'SqliteBlockStore',
  setup: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-blocks-'))
    const store = SqliteBlockStore.open(join(dir, 'blocks.db'))
    dirs.set(store, dir)
    return store
  },
  teardown: async (store) => {
    await store.close()
    rmSync(dirs.get(store) ?? '', { recursive: true, force: true })
    dirs.delete(store)
  }
})
