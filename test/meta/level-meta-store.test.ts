import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryLevel } from 'memory-level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AnyAbstractLevel } from '../../src/meta/abstract-level-meta-store.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'

/**
 * Records the options of every chained batch `db` writes (what the store hands LevelDB:
 * `sync: true` makes it `fsync` its log before the write resolves). A power loss cannot
 * be simulated; this checks that the store asks for the sync.
 */
function recordWrites(db: AnyAbstractLevel): unknown[] {
  const seen: unknown[] = []
  const batch = db.batch.bind(db) as () => ReturnType<AnyAbstractLevel['batch']>
  ;(db as { batch: unknown }).batch = (...args: unknown[]) => {
    if (args.length > 0) throw new Error('the store writes chained batches only')
    const chained = batch()
    const write = chained.write.bind(chained)
    chained.write = (options?: unknown) => {
      seen.push(options)
      return write(options as never)
    }
    return chained
  }
  return seen
}

const ops = [{ type: 'put' as const, key: 'k', value: 'v' }]

describe('LevelMetaStore durability', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-level-sync-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('writes every batch with sync: true by default (a LevelDB location)', async () => {
    const store = new LevelMetaStore({ location: join(dir, 'meta') })
    await store.open()
    try {
      const seen = recordWrites(store.db!)
      await store.batch(ops)
      await store.batch([{ type: 'del', key: 'k' }], { expect: [{ key: 'k', value: 'v' }] })
      expect(seen).toEqual([{ sync: true }, { sync: true }])
      expect(await store.get('k')).toBeUndefined()
    } finally {
      await store.close()
    }
  })

  it('writes every batch with sync: true by default (a db given)', async () => {
    const db = new MemoryLevel()
    const seen = recordWrites(db)
    const store = new LevelMetaStore({ db })
    await store.open()
    await store.batch(ops)
    expect(seen).toEqual([{ sync: true }])
    await store.close()
  })

  it('does not ask for a sync with sync: false', async () => {
    const store = new LevelMetaStore({ location: join(dir, 'meta'), sync: false })
    await store.open()
    try {
      const seen = recordWrites(store.db!)
      await store.batch(ops)
      expect(seen).toEqual([undefined])
      expect(await store.get('k')).toBe('v')
    } finally {
      await store.close()
    }
    const db = new MemoryLevel()
    const seen = recordWrites(db)
    const onDb = new LevelMetaStore({ db, sync: false })
    await onDb.open()
    await onDb.batch(ops)
    expect(seen).toEqual([undefined])
    await onDb.close()
  })

  it('MemoryMetaStore has nothing to sync', async () => {
    const store = new MemoryMetaStore()
    const seen = recordWrites(store.db!)
    await store.open()
    await store.batch(ops)
    expect(seen).toEqual([undefined])
    await store.close()
  })

  it('rejects a sync option that is not a boolean', () => {
    expect(() => new LevelMetaStore({ location: join(dir, 'meta'), sync: 'yes' as never })).toThrow(TypeError)
    expect(() => new LevelMetaStore({ db: new MemoryLevel(), sync: 1 as never })).toThrow(TypeError)
  })
})
