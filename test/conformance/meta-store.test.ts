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
