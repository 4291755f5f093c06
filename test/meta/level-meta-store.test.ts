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

describe('LevelMetaStore reads of keys it wrote', () => {
  it('answers a key it read and then wrote from memory, and reads a key written blind from the database', async () => {
    const db = new MemoryLevel<string, string>({ keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const store = new LevelMetaStore({ db, sync: false })
    await store.open()
    let reads = 0
    const get = db.get.bind(db) as (...args: unknown[]) => Promise<unknown>
    ;(db as { get: unknown }).get = (...args: unknown[]) => {
      reads++
      return get(...args)
    }
    try {
      await store.batch([{ type: 'put', key: 'job', value: 'j1' }, { type: 'put', key: 'segment', value: 's1' }])
      // Written before anything read it: read from the database.
      expect(await store.get('job')).toBe('j1')
      expect(reads).toBe(1)
      // Read, then written (a read-modify-write): answered from memory from then on.
      await store.batch([{ type: 'put', key: 'job', value: 'j2' }, { type: 'put', key: 'segment', value: 's2' }])
      expect(await store.get('job')).toBe('j2')
      await store.batch([{ type: 'put', key: 'job', value: 'j3' }])
      expect(await store.get('job')).toBe('j3')
      expect(reads).toBe(1)
      await store.batch([{ type: 'del', key: 'job' }])
      expect(await store.get('job')).toBeUndefined()
      expect(reads).toBe(1)
      // Written twice, never read before: nothing kept.
      expect(await store.get('segment')).toBe('s2')
      expect(reads).toBe(2)
      // open() forgets everything.
      await store.close()
      await store.open()
      expect(await store.get('job')).toBeUndefined()
      expect(reads).toBe(3)
    } finally {
      await store.close()
    }
  })
})
