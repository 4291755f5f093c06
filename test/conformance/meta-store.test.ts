import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryLevel } from 'memory-level'
import { describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { guardMetaStore } from '../../src/meta/guarded-meta-store.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaStore } from '../../src/meta/meta-store.js'
import { collect, metaStoreSuite } from './meta-store.suite.js'
import { suspendBatchLimitsInThisFile } from '../helpers/batch-limits.js'

// The adapters' own tests send batches larger than vecsnap ever issues, on purpose.
suspendBatchLimitsInThisFile()

metaStoreSuite('MemoryMetaStore', async () => {
  const store = new MemoryMetaStore()
  return { store, reopen: async () => store }
})

metaStoreSuite('LevelMetaStore (classic-level)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vecsnap-meta-'))
  const location = join(dir, 'meta')
  return {
    store: new LevelMetaStore({ location }),
    reopen: async () => new LevelMetaStore({ location }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
})

metaStoreSuite('LevelMetaStore({ db: MemoryLevel })', async () => {
  const db = new MemoryLevel()
  return { store: new LevelMetaStore({ db }), reopen: async () => new LevelMetaStore({ db }) }
})

metaStoreSuite('guardMetaStore(MemoryMetaStore)', async () => ({ store: guardMetaStore(new MemoryMetaStore()) }))

describe('LevelMetaStore', () => {
  it('rejects IO_ERROR naming the lock when another store holds the database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-meta-'))
    const first = new LevelMetaStore({ location: dir })
    const second = new LevelMetaStore({ location: dir })
    try {
      await first.open()
      const err = await second.open().then(() => undefined, (e: unknown) => e)
      expect(err).toMatchObject({ code: 'IO_ERROR', message: expect.stringMatching(/locked by another process/) })
      expect(second.status).toBe('closed')
      await first.close()
      await second.open()
      expect(second.status).toBe('open')
    } finally {
      await first.close()
      await second.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('does not lock the database before open()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-meta-'))
    const idle = new LevelMetaStore({ location: dir })
    const active = new LevelMetaStore({ location: dir })
    try {
      await new Promise((r) => setTimeout(r, 20))
      await active.open()
      expect(active.status).toBe('open')
      expect(idle.status).toBe('closed')
    } finally {
      await active.close()
      await idle.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('writes utf8 through an injected db whatever its default encodings', async () => {
    const db = new MemoryLevel<string, unknown>({ valueEncoding: 'json' })
    const store = new LevelMetaStore({ db })
    await store.open()
    await store.batch([{ type: 'put', key: 'a', value: '{"x":1}' }])
    expect(await store.get('a')).toBe('{"x":1}')
    expect(await db.get('a')).toEqual({ x: 1 })
    await store.close()
    expect(db.status).toBe('closed')
  })

  it('writes and deletes utf8 keys through an injected db whose default key encoding is not utf8', async () => {
    const db = new MemoryLevel<unknown, unknown>({ keyEncoding: 'json', valueEncoding: 'json' })
    const store = new LevelMetaStore({ db })
    await store.open()
    await store.batch([{ type: 'put', key: 'a', value: '1' }, { type: 'put', key: 'b', value: '2' }])
    await store.batch([{ type: 'del', key: 'a' }])
    // Stored as the utf8 strings themselves, not as JSON.
    expect(await db.keys({ keyEncoding: 'utf8' }).all()).toEqual(['b'])
    expect(await store.get('b')).toBe('2')
    expect(await store.get('a')).toBeUndefined()
    await store.close()
  })

  it('rejects wrong options with a TypeError', () => {
    expect(() => new LevelMetaStore({ location: '' })).toThrow(TypeError)
    expect(() => new LevelMetaStore({} as never)).toThrow(TypeError)
    expect(() => new LevelMetaStore({ db: {} as never })).toThrow(TypeError)
  })
})

describe('AbstractLevelMetaStore', () => {
  it('lets batches issued before close() finish, then closes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-meta-'))
    try {
      const store = new LevelMetaStore({ location: dir })
      await store.open()
      const writes = Array.from({ length: 5 }, (_, i) => store.batch([{ type: 'put', key: `k${i}`, value: String(i) }], { expect: [] }))
      await store.close()
      await Promise.all(writes)
      const again = new LevelMetaStore({ location: dir })
      await again.open()
      expect(await collect(again.iterate())).toHaveLength(5)
      await again.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  describe('recently written keys', () => {
    const put = (key: string, value: string) => ({ type: 'put' as const, key, value })

    /** Runs `fn` with an open LevelMetaStore in a fresh directory, and removes the directory. */
    async function withLevelStore(fn: (store: LevelMetaStore, dir: string) => Promise<void>): Promise<void> {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-meta-'))
      const store = new LevelMetaStore({ location: dir })
      try {
        await store.open()
        await fn(store, dir)
      } finally {
        await store.close()
        await rm(dir, { recursive: true, force: true })
      }
    }

    it('reads what another process wrote while the store was closed', async () => {
      await withLevelStore(async (store, dir) => {
        await store.batch([put('k', 'mine')])
        expect(await store.get('k')).toBe('mine')
        await store.close()
        const other = new LevelMetaStore({ location: dir })
        await other.open()
        await other.batch([put('k', 'theirs'), put('gone', 'x')])
        await other.batch([{ type: 'del', key: 'gone' }])
        await other.close()
        await store.open()
        expect(await store.get('k')).toBe('theirs')
        expect(await store.get('gone')).toBeUndefined()
      })
    })

    it('reads what LevelDB holds for keys and values with lone surrogates (UTF-8 makes them U+FFFD)', async () => {
      await withLevelStore(async (store) => {
        await store.batch([put('k\uFFFD', 'one')])
        await store.batch([put('k\uD800', 'two'), put('v', 'a\uD800')])
        expect(await store.get('k\uFFFD')).toBe('two')
        const stored = await store.get('v')
        await store.close()
        await store.open()
        expect(await store.get('v')).toBe(stored)
      })
    })

    it('answers with the latest write after deletes, long values and bulk batches', async () => {
      const store = new MemoryMetaStore()
      await store.open()
      await store.batch([put('a', '1'), put('b', '1'), put('c', '1')])
      await store.batch([{ type: 'del', key: 'a' }])
      expect(await store.get('a')).toBeUndefined()
      // Too long to keep: the write must still replace the kept '1'.
      const long = 'x'.repeat(100_000)
      await store.batch([put('b', long)])
      expect(await store.get('b')).toBe(long)
      // A bulk batch forgets the keys it writes instead of keeping them.
      await store.batch([put('c', '2'), ...Array.from({ length: 5_000 }, (_, i) => put(`bulk/${i}`, ''))])
      expect(await store.get('c')).toBe('2')
      expect(await store.get('bulk/4999')).toBe('')
      // Many small batches: the oldest keys are dropped, reads still see the database.
      for (let i = 0; i < 3_000; i++) await store.batch([put(`many/${i}`, String(i))])
      expect(await store.get('many/0')).toBe('0')
      expect(await store.get('many/2999')).toBe('2999')
      await store.close()
    })
  })

})

describe('guardMetaStore', () => {
  const failing = (err: unknown): MetaStore => {
    const inner = new MemoryMetaStore()
    return Object.assign(Object.create(inner) as MetaStore, {
      get: async () => { throw err },
      batch: async () => { throw err },
      iterate: async function* () { throw err },
      open: () => inner.open(),
      close: () => inner.close(),
    })
  }

  it('is idempotent and returns one wrapper per store', () => {
    const raw = new MemoryMetaStore()
    const guarded = guardMetaStore(raw)
    expect(guarded).not.toBe(raw)
    expect(guardMetaStore(raw)).toBe(guarded)
    expect(guardMetaStore(guarded)).toBe(guarded)
  })

  it('rejects wrong argument types with a TypeError before the adapter sees them', async () => {
    const raw = new MemoryMetaStore()
    const store = guardMetaStore(raw)
    await store.open()
    await expect(store.get('' as string)).rejects.toThrow(TypeError)
    await expect(store.get(42 as never)).rejects.toThrow(/Expected `key` to be a non-empty string, got `42`/)
    await expect(store.batch({} as never)).rejects.toThrow(TypeError)
    await expect(store.batch([{ type: 'put', key: 'a', value: 1 as never }])).rejects.toThrow(/operations\[0\]\.value/)
    await expect(store.batch([{ type: 'put', key: 'a', value: '1' }], { expect: [{ key: 'a', value: 1 as never }] })).rejects.toThrow(TypeError)
    await expect(collect(store.iterate({ gt: 1 as never }))).rejects.toThrow(TypeError)
    await expect(collect(store.iterate({ limit: -1 }))).rejects.toThrow(TypeError)
    await expect(store.get('a', { signal: 'yes' as never })).rejects.toThrow(TypeError)
    expect(await collect(raw.iterate())).toEqual([])
    await store.close()
  })

  it('rejects ABORTED on entry even when the adapter ignores signals', async () => {
    const store = guardMetaStore(failing(new Error('must not be called')))
    const signal = AbortSignal.abort()
    await expect(store.open({ signal })).rejects.toMatchObject({ code: 'ABORTED' })
    await expect(store.get('a', { signal })).rejects.toMatchObject({ code: 'ABORTED' })
    await expect(store.batch([], { signal })).rejects.toMatchObject({ code: 'ABORTED' })
    await expect(collect(store.iterate({}, { signal }))).rejects.toMatchObject({ code: 'ABORTED' })
  })

  it('maps unknown failures to IO_ERROR and keeps SnapshotErrors', async () => {
    const boom = new Error('disk on fire')
    const store = guardMetaStore(failing(boom))
    for (const call of [() => store.get('a'), () => store.batch([]), () => collect(store.iterate())]) {
      const err = await call().then(() => undefined, (e: unknown) => e)
      expect(err).toBeInstanceOf(SnapshotError)
      expect(err).toMatchObject({ code: 'IO_ERROR', cause: boom, message: expect.stringContaining('disk on fire') })
    }
    const kept = new SnapshotError('NOT_OPEN', 'closed')
    await expect(guardMetaStore(failing(kept)).get('a')).rejects.toBe(kept)
  })
})
