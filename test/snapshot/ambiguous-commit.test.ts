import { describe, expect, it } from 'vitest'
import type { MetaBatchOptions, MetaOperation } from '../../src/meta/meta-store.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { DelegatingMetaStore } from '../helpers/delegating-meta-store.js'
import { backends, flushedSegment, openManager, seedCollection, snapshotProblems } from './env.js'

/**
 * Issue 15, defect 5: the batch that commits a snapshot lands, but the call reports an
 * error (a timeout, a lost connection). A restore of the snapshot is accepted before the
 * create's failure path runs. The failure path must not purge the committed snapshot: it
 * removes only a snapshot that is still `pending` and still its own, and a purge never
 * touches a committed snapshot (only `dropSnapshot` does, which checks `IN_USE`).
 */

/** Applies the batch that commits a snapshot, then calls `after` and throws as a lost connection would. */
class LandsThenThrows extends DelegatingMetaStore {
  armed = false
  after: () => void = () => undefined

  override async batch(ops: readonly MetaOperation[], o?: MetaBatchOptions): Promise<void> {
    await this.inner.batch(ops, o)
    if (this.armed && ops.some((op) => op.type === 'put' && op.key.startsWith('s/snap/') && op.value.includes('"state":"committed"'))) {
      this.armed = false
      this.after()
      throw new Error('connection lost after the commit was sent')
    }
  }
}

describe.each(backends)('a commit that lands but reports an error on $name', (backend) => {
  it('leaves the committed snapshot, and the restore accepted meanwhile completes', async () => {
    const stores = await backend.make()
    const meta = new LandsThenThrows(stores.meta)
    let manager: SnapshotManager | undefined
    try {
      manager = await openManager(meta, stores.objects, { checkIntervalMs: 10 })
      const m = manager
      const coll = await seedCollection(m, 'docs')
      for (let i = 0; i < 3; i++) await flushedSegment(m, stores.objects, coll)
      let restore: Promise<number> | undefined
      meta.armed = true
      // Queued behind the failing commit's transaction, ahead of the create's failure path.
      meta.after = () => {
        restore = m.restoreSnapshot({ snapshotName: 'nightly', targetCollectionName: 'copy' })
      }
      await expect(m.createSnapshot({ collectionName: 'docs', snapshotName: 'nightly' })).rejects.toThrow(/connection lost/)
      const jobId = await (restore as Promise<number>)
      expect(await m.waitForRestore(jobId)).toMatchObject({ state: 'completed', copiedSegments: 3 })
      expect((await m.listSnapshots()).map((s) => s.name)).toEqual(['nightly'])
      expect(await m.verifySnapshot('nightly')).toMatchObject({ ok: true })
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
    } finally {
      await manager?.close()
      await stores.dispose()
    }
  })
})
