import { describe, expect, it } from 'vitest'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import { CrashPlan, crashingMetaStore, crashingObjectStore } from '../helpers/crash-store.js'
import { backends, flushedSegment, openManager, putFile, seedCollection, snapshotProblems, snapshotRecords, type Stores } from './env.js'

/**
 * Crash injection: for every N, the N-th write (MetaStore batch or ObjectStore
 * put/copy/delete) of an operation fails; then the manager is closed and a new one is
 * opened over the same underlying stores. Recovery must leave no pending or deleting
 * record, no orphaned snapshot object, and every committed snapshot intact.
 */

interface World {
  stores: Stores
  plan: CrashPlan
  manager: SnapshotManager
  coll: CollectionInfo
  segs: SegmentInfo[]
}

/** A collection with a committed snapshot `a`, then one more segment and deletes on the first: `b` writes 2 manifests and reuses 2. */
async function world(make: () => Promise<Stores>): Promise<World> {
  const stores = await make()
  const plan = new CrashPlan()
  const manager = await openManager(crashingMetaStore(stores.meta, plan), crashingObjectStore(stores.objects, plan))
  const coll = await seedCollection(manager, 'docs')
  const segs = [
    await flushedSegment(manager, stores.objects, coll),
    await flushedSegment(manager, stores.objects, coll),
    await flushedSegment(manager, stores.objects, coll),
  ]
  await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
  segs.push(await flushedSegment(manager, stores.objects, coll))
  await manager.catalog.addDeltalogs(segs[0].id, [{ fieldId: coll.schema.fields[0].fieldId, files: [await putFile(stores.objects, 'files/extra-deletes', 3)] }])
  return { stores, plan, manager, coll, segs }
}

/**
 * Reopens over the underlying stores (no crash wrapper), runs one GC pass (it collects the
 * objects under `snapshots/` that no record owns or lists: a list object whose record a
 * crash removed just before it) and checks every invariant.
 */
async function reopenAndCheck(w: World, committed: string[]): Promise<SnapshotManager> {
  await w.manager.close().catch(() => undefined)
  const manager = await openManager(w.stores.meta, w.stores.objects, { orphanGraceMs: 0 })
  await manager.runGc()
  expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
  const records = await snapshotRecords(w.stores.meta)
  expect(records.every((r) => r.state === 'committed')).toBe(true)
  expect((await manager.listSnapshots()).map((s) => s.name).sort()).toEqual(committed.slice().sort())
  for (const name of committed) expect(await manager.verifySnapshot(name)).toMatchObject({ ok: true, missing: [], corrupt: [] })
  return manager
}

async function countWrites(make: () => Promise<Stores>, op: (w: World) => Promise<unknown>, setup?: (w: World) => Promise<void>): Promise<number> {
  const w = await world(make)
  try {
    await setup?.(w)
    const before = w.plan.writes
    await op(w)
    return w.plan.writes - before
  } finally {
    await w.manager.close()
    await w.stores.dispose()
  }
}

describe.each(backends)('crash injection on $name', (backend) => {
  const create = (w: World) => w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })

  it('createSnapshot: a crash at every write recovers to a consistent state', async () => {
    const total = await countWrites(backend.make, create)
    expect(total).toBe(7) // reserve batch, list object, 2 manifests (they may land before the pin batch), pin batch, metadata JSON, commit batch
    for (const mode of ['crash', 'once'] as const) {
      for (let n = 1; n <= total; n++) {
        const w = await world(backend.make)
        try {
          w.plan.armIn(n, { mode })
          await expect(create(w), `${mode} at write ${n}`).rejects.toThrow()
          if (mode === 'once') {
            // The create cleaned up after itself at once.
            expect(await snapshotProblems(w.stores.meta, w.stores.objects), `${mode} at write ${n}`).toEqual([])
          }
          w.plan.disarm()
          const manager = await reopenAndCheck(w, ['a'])
          // The name is free and a retry succeeds, reusing a's manifests again.
          await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })).resolves.toMatchObject({ segmentCount: 4 })
          expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
          w.manager = manager
        } finally {
          await w.manager.close()
          await w.stores.dispose()
        }
      }
    }
  })

  it('dropSnapshot: a crash at every write recovers to a consistent state', async () => {
    const setup = async (w: World) => {
      await create(w)
    }
    for (const victim of ['a', 'b'] as const) {
      const drop = (w: World) => w.manager.dropSnapshot(victim)
      const total = await countWrites(backend.make, drop, setup)
      expect(total).toBe(4) // mark batch, object delete, removal batch, list delete
      const survivor = victim === 'a' ? 'b' : 'a'
      for (const mode of ['crash', 'once'] as const) {
        for (let n = 1; n <= total; n++) {
          const w = await world(backend.make)
          try {
            await setup(w)
            w.plan.armIn(n, { mode })
            await expect(drop(w), `${victim}: ${mode} at write ${n}`).rejects.toThrow()
            w.plan.disarm()
            // Crashing at the first write leaves the snapshot committed; any later write means it was marked and recovery finishes the drop.
            const manager = await reopenAndCheck(w, n === 1 ? ['a', 'b'] : [survivor])
            w.manager = manager
            await manager.dropSnapshot(victim)
            await manager.dropSnapshot(survivor)
            expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
            expect(await snapshotRecords(w.stores.meta)).toEqual([])
          } finally {
            await w.manager.close()
            await w.stores.dispose()
          }
        }
      }
    }
  })

  it('a crash during recovery is recovered by the next open()', async () => {
    const w = await world(backend.make)
    try {
      w.plan.armIn(3) // b: pin batch and first manifest succeed, then the process "dies"
      await expect(create(w)).rejects.toThrow()
      await w.manager.close().catch(() => undefined)
      // Recovery itself crashes at its first write, then at its second.
      for (const n of [1, 2]) {
        const plan = new CrashPlan()
        plan.armIn(n)
        await expect(openManager(crashingMetaStore(w.stores.meta, plan), crashingObjectStore(w.stores.objects, plan))).rejects.toThrow()
      }
      w.manager = await reopenAndCheck(w, ['a'])
    } finally {
      await w.manager.close()
      await w.stores.dispose()
    }
  })
})
