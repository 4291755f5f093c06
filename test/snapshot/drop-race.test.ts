import { describe, expect, it } from 'vitest'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryObjects } from '../helpers/memory-objects.js'
import { flushedSegment, openManager, seedCollection, snapshotProblems, snapshotRecords } from './env.js'

/** Objects whose `get` of one key first runs a hook (another drop finishing in between). */
class HookedObjects extends MemoryObjects {
  hook: { key: string; run: () => Promise<void> } | undefined
  override async get(key: string): Promise<Uint8Array | undefined> {
    const h = this.hook
    if (h !== undefined && key === h.key) {
      this.hook = undefined
      await h.run()
    }
    return super.get(key)
  }
}

/** A collection of 3 segments with the snapshots `names` taken, reopened so the list cache is empty. */
async function seeded(names: string[]): Promise<{ meta: MemoryMetaStore; objects: HookedObjects; manager: SnapshotManager }> {
  const meta = new MemoryMetaStore()
  const objects = new HookedObjects()
  const first = await openManager(meta, objects)
  const coll = await seedCollection(first, 'docs')
  for (let i = 0; i < 3; i++) await flushedSegment(first, objects, coll, { numRows: 10 + i })
  for (const snapshotName of names) await first.createSnapshot({ collectionName: 'docs', snapshotName })
  await first.close()
  return { meta, objects, manager: await openManager(meta, objects) }
}

/**
 * Review finding: a drop reads the lists of the collection's other snapshots (to keep the
 * manifests they share); one of them dropped between the read of its record and of its list
 * is not damage, and the drop goes on. A create's reuse of the newest snapshot's list
 * likewise falls back to writing every manifest itself.
 */
describe('a snapshot dropped while another drop or a create reads its list', () => {
  it('dropSnapshot goes on (no CORRUPT) and leaves nothing behind', async () => {
    // s2 shares s1's manifests; the drop of s1 reads s2's list from the store.
    const { meta, objects, manager } = await seeded(['s1', 's2'])
    const s2 = (await snapshotRecords(meta)).find((r) => r.name === 's2')!
    let ran = false
    objects.hook = {
      key: s2.list!.key,
      run: async () => {
        await manager.dropSnapshot('s2')
        ran = true
      },
    }
    await manager.dropSnapshot('s1')
    expect(ran).toBe(true)
    expect(await manager.listSnapshots()).toEqual([])
    expect(await snapshotProblems(meta, objects)).toEqual([])
    await manager.close()
  })

  it('createSnapshot reuses nothing and commits when the newest snapshot is dropped before its list is read', async () => {
    const { meta, objects, manager } = await seeded(['s1'])
    const s1 = (await snapshotRecords(meta)).find((r) => r.name === 's1')!
    objects.hook = { key: s1.list!.key, run: () => manager.dropSnapshot('s1') }
    const s2 = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's2' })
    expect(s2.segmentCount).toBe(3)
    expect((await manager.verifySnapshot('s2')).ok).toBe(true)
    expect(await snapshotProblems(meta, objects)).toEqual([])
    await manager.close()
  })

  it('spaceReport reads again (no CORRUPT) when a snapshot is dropped under it', async () => {
    const { meta, objects, manager } = await seeded(['s1', 's2'])
    const s2 = (await snapshotRecords(meta)).find((r) => r.name === 's2')!
    objects.hook = { key: s2.list!.key, run: () => manager.dropSnapshot('s2') }
    const report = await manager.spaceReport()
    expect(report.snapshots.map((s) => s.name)).toEqual(['s1'])
    await manager.close()
  })
})
