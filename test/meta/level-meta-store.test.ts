import { mkdtemp, readdir, rm } from 'node:fs/promises'
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

describe('LevelMetaStore memory options', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-level-memory-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('opens LevelDB with the write buffer and block cache asked for', async () => {
    /** Writes 500 KB, reads the last value back; resolves the table files LevelDB wrote (counted once it closed). */
    const fill = async (store: LevelMetaStore, location: string): Promise<string[]> => {
      const value = 'x'.repeat(1000)
      await store.open()
      try {
        for (let i = 0; i < 10; i++) await store.batch(Array.from({ length: 50 }, (_, j) => ({ type: 'put' as const, key: `k${i}/${j}`, value })))
        expect(await store.get('k9/49')).toBe(value)
      } finally {
        await store.close()
      }
      return (await readdir(location)).filter((f) => f.endsWith('.ldb'))
    }
    // A 64 KiB buffer fills many times: LevelDB writes tables as it goes.
    const small = join(dir, 'small')
    expect((await fill(new LevelMetaStore({ location: small, sync: false, blockCacheBytes: 0, writeBufferBytes: 64 * 1024 }), small)).length).toBeGreaterThan(1)
    // The default one (1 MiB) holds it all.
    const defaults = join(dir, 'defaults')
    expect(await fill(new LevelMetaStore({ location: defaults, sync: false }), defaults)).toEqual([])
  })

  it('rejects sizes out of range, and sizes with a db (configured by whoever created it)', () => {
    const location = join(dir, 'meta')
    for (const bad of [-1, 1.5, 2 ** 32, '1' as never]) expect(() => new LevelMetaStore({ location, blockCacheBytes: bad })).toThrow(TypeError)
    for (const bad of [0, 64 * 1024 - 1, 2 ** 30 + 1, NaN]) expect(() => new LevelMetaStore({ location, writeBufferBytes: bad })).toThrow(TypeError)
    expect(() => new LevelMetaStore({ db: new MemoryLevel(), blockCacheBytes: 1024 })).toThrow(TypeError)
    expect(() => new LevelMetaStore({ db: new MemoryLevel(), writeBufferBytes: 1024 * 1024 })).toThrow(TypeError)
    expect(() => new LevelMetaStore({ location, blockCacheBytes: 0, writeBufferBytes: 64 * 1024 })).not.toThrow()
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
