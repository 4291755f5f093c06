import { describe, expect, it } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'

/**
 * Issue 15, defect 4: a LevelDB or memory store (batches checked in one process only) takes
 * one manager at a time. A second manager on the same store object would run recovery over
 * the first one's creates in flight and work its restore jobs twice: its `open()` is refused.
 */
describe('one manager per local MetaStore', () => {
  it('refuses a second open manager on the same store object with FAILED_PRECONDITION; after close() another may open', async () => {
    const meta = new MemoryMetaStore()
    const objects = new MemoryObjects()
    const first = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
    await first.open()
    const second = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
    await expect(second.open()).rejects.toMatchObject({ name: 'SnapshotError', code: 'FAILED_PRECONDITION', message: expect.stringContaining('another SnapshotManager') })
    // The refused manager changed nothing: the first one goes on.
    await first.catalog.createCollection({ name: 'docs', schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }] } })
    await first.close()
    const third = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
    await third.open()
    expect((await third.catalog.listCollections()).map((c) => c.name)).toEqual(['docs'])
    await third.close()
  })

  it('stores whose batches are checked across processes (etcd) take several managers', async () => {
    const data = new Map<string, string>()
    const managers = [0, 1].map(() => new SnapshotManager({ meta: new MapMetaStore({ data }), objects: new MemoryObjects(), gcIntervalMs: 0 }))
    await Promise.all(managers.map((m) => m.open()))
    await Promise.all(managers.map((m) => m.close()))
  })
})
