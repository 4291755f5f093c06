import { describe, expect, it } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'
import { backends, code, snapshotProblems, worldPerTest } from './env.js'

/** SPEC section 12: holds (tags, optional TTL) keep a snapshot from being dropped. */
describe.each(backends)('holds on $name', (backend) => {
  const w = worldPerTest(backend)

  it('a held snapshot lists its holds and cannot be dropped (IN_USE naming the tags) until released', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    w.clock.frozen = true
    const now = w.clock.t
    await w.manager.holdSnapshot('s', { tag: 'legal' })
    await w.manager.holdSnapshot('s', { tag: 'export:42', ttlMs: 60_000 })
    const [info] = await w.manager.listSnapshots()
    expect(info.holds).toEqual([{ tag: 'export:42', expiresAt: now + 60_000 }, { tag: 'legal' }])
    expect((await w.manager.describeSnapshot('s')).holds).toEqual(info.holds)
    const err = await w.manager.dropSnapshot('s').catch((e: unknown) => e)
    expect(err).toEqual(code('IN_USE'))
    expect((err as Error).message).toMatch(/export:42, legal/)
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['s'])
    await w.manager.releaseSnapshot('s', 'legal')
    await w.manager.releaseSnapshot('s', 'legal') // idempotent
    await expect(w.manager.dropSnapshot('s')).rejects.toEqual(code('IN_USE'))
    await w.manager.releaseSnapshot('s', 'export:42')
    await w.manager.dropSnapshot('s')
    expect(await w.manager.listSnapshots()).toEqual([])
    expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
    await w.manager.releaseSnapshot('s', 'legal') // the snapshot is gone: still resolves
  })

  it('an expired hold holds nothing and is not listed; holding again renews it', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    w.clock.frozen = true
    await w.manager.holdSnapshot('s', { tag: 'job', ttlMs: 1_000 })
    w.clock.t += 600
    await w.manager.holdSnapshot('s', { tag: 'job', ttlMs: 1_000 }) // renewed: 1 s from now
    w.clock.t += 600
    await expect(w.manager.dropSnapshot('s')).rejects.toEqual(code('IN_USE'))
    w.clock.t += 600
    expect((await w.manager.listSnapshots())[0].holds).toEqual([])
    await w.manager.dropSnapshot('s')
  })

  it('refuses a hold past 64 in force (FAILED_PRECONDITION) but renews an existing tag', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    for (let i = 0; i < 64; i++) await w.manager.holdSnapshot('s', { tag: `t${i}` })
    await expect(w.manager.holdSnapshot('s', { tag: 'one-more' })).rejects.toEqual(code('FAILED_PRECONDITION'))
    await w.manager.holdSnapshot('s', { tag: 't0', ttlMs: 1_000 })
    expect((await w.manager.listSnapshots())[0].holds).toHaveLength(64)
  })

  it('rejects bad input without writing: unknown snapshot NOT_FOUND, bad tag or TTL INVALID_ARGUMENT, wrong types TypeError', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    await expect(w.manager.holdSnapshot('nope', { tag: 't' })).rejects.toEqual(code('NOT_FOUND'))
    for (const tag of ['', '-x', 'a b', 'x'.repeat(129)]) await expect(w.manager.holdSnapshot('s', { tag })).rejects.toEqual(code('INVALID_ARGUMENT'))
    for (const ttlMs of [0, -1, 1.5]) await expect(w.manager.holdSnapshot('s', { tag: 't', ttlMs })).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(w.manager.holdSnapshot('s', { tag: 5 as never })).rejects.toThrow(TypeError)
    await expect(w.manager.holdSnapshot('s', { tag: 't', ttlMs: '1' as never })).rejects.toThrow(TypeError)
    expect((await w.manager.listSnapshots())[0].holds).toEqual([])
  })
})

describe('holds shared by every manager on the store', () => {
  it('a hold set by one process stops a drop in another', async () => {
    const data = new Map<string, string>()
    const objects = new MemoryObjects()
    const [a, b] = [0, 1].map(() => new SnapshotManager({ meta: new MapMetaStore({ data }), objects, gcIntervalMs: 0 }))
    await a.open()
    await b.open()
    try {
      await a.catalog.createCollection({ name: 'docs', schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }] } })
      await a.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
      await a.holdSnapshot('s', { tag: 'backup' })
      await expect(b.dropSnapshot('s')).rejects.toEqual(code('IN_USE'))
      expect((await b.listSnapshots())[0].holds).toEqual([{ tag: 'backup' }])
      await b.releaseSnapshot('s', 'backup')
      await a.dropSnapshot('s')
    } finally {
      await a.close()
      await b.close()
    }
  })
})
