import { afterEach, describe, expect, it } from 'vitest'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { AbortOptions } from '../../src/types.js'
import { SnapshotError } from '../../src/errors.js'
import { DelegatingMetaStore } from '../helpers/delegating-meta-store.js'
import { delay, flushedSegment, fsBackends, openManager, seedCollection, WrappedObjects, type Stores } from './helpers.js'

/** A MemoryMetaStore whose reads can be slowed down, so a signal can fire mid-read. */
class SlowReads extends DelegatingMetaStore {
  slowMs = 0
  constructor() { super(new MemoryMetaStore()) }
  override async get(key: string, o?: AbortOptions) {
    if (this.slowMs > 0) await delay(this.slowMs)
    return this.inner.get(key, o)
  }
}

describe('waitForRestore aborted while it reads the job', () => {
  let stores: Stores | undefined
  afterEach(async () => { await stores?.dispose() })

  it('rejects ABORTED without an unhandled rejection, and the job stays cancellable', async () => {
    stores = await fsBackends[0].make()
    const meta = new SlowReads()
    const objects = new WrappedObjects(stores.objects)
    let release!: () => void
    const gate = new Promise<void>((r) => { release = r })
    objects.beforeCopy = () => gate
    // A long tick, so the wait is still parked on its next-change promise when the signal fires.
    const manager = await openManager(meta, objects, { checkIntervalMs: 1000 })
    const unhandled: unknown[] = []
    const onUnhandled = (err: unknown) => unhandled.push(err)
    process.on('unhandledRejection', onUnhandled)
    try {
      const coll = await seedCollection(manager, 'src')
      await flushedSegment(manager, stores.objects, coll)
      await manager.createSnapshot({ collectionName: 'src', snapshotName: 's1' })
      const jobId = await manager.restoreSnapshot({ snapshotName: 's1', targetCollectionName: 'dst' })
      meta.slowMs = 80
      const ac = new AbortController()
      const waiting = manager.waitForRestore(jobId, { signal: ac.signal })
      await delay(20) // the first read of the job is now in flight
      ac.abort()
      const err = await waiting.catch((e: unknown) => e)
      expect(SnapshotError.is(err, 'ABORTED')).toBe(true)
      await delay(150) // give a stray rejection time to surface
      expect(unhandled).toEqual([])
      meta.slowMs = 0
      release()
      await manager.cancelRestore(jobId)
      expect((await manager.getRestoreState(jobId)).state).toBe('cancelled')
    } finally {
      process.off('unhandledRejection', onUnhandled)
      release()
      await manager.close()
    }
  })
})
