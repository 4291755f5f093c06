import { describe, expect, it } from 'vitest'
import type { ObjectInfo, ObjectStore } from '../../src/storage/object-store.js'
import { backends, flushedSegment, openManager, seedCollection, snapshotProblems } from './env.js'

/**
 * Issue 15, defect 7 (SPEC section 3): `close()` waits for API calls in flight. A call racing
 * `close()` finishes before the stores close, or rejects `NOT_OPEN`; it never fails inside a
 * closed store.
 */
describe.each(backends)('close() with calls in flight on $name', (backend) => {
  it('waits for a create and a catalog write under way; later calls reject NOT_OPEN', async () => {
    const stores = await backend.make()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let entered!: () => void
    const inside = new Promise<void>((r) => (entered = r))
    const slow: ObjectStore = Object.create(stores.objects) as ObjectStore
    slow.put = async (key, body, o) => {
      if (key.includes('/metadata/')) {
        entered()
        await gate
      }
      return stores.objects.put(key, body, o)
    }
    const manager = await openManager(stores.meta, slow)
    try {
      const coll = await seedCollection(manager, 'docs')
      await flushedSegment(manager, stores.objects, coll)
      const creating = manager.createSnapshot({ collectionName: 'docs', snapshotName: 'during-close' })
      await inside
      const closing = manager.close()
      await expect(manager.listSnapshots()).rejects.toMatchObject({ code: 'NOT_OPEN' })
      await expect(manager.catalog.listCollections()).rejects.toMatchObject({ code: 'NOT_OPEN' })
      let closed = false
      void closing.then(() => (closed = true))
      await new Promise((r) => setTimeout(r, 20))
      expect(closed).toBe(false)
      release()
      await expect(creating).resolves.toMatchObject({ name: 'during-close', state: 'committed' })
      await closing
      const again = await openManager(stores.meta, stores.objects)
      expect((await again.listSnapshots()).map((s) => s.name)).toEqual(['during-close'])
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
      await again.close()
    } finally {
      release()
      await manager.close()
      await stores.dispose()
    }
  })

  it('lets a GC pass under way finish (its catalog reads do not fail NOT_OPEN)', async () => {
    const stores = await backend.make()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let entered!: () => void
    const inside = new Promise<void>((r) => (entered = r))
    const o0 = stores.objects
    let gated = true
    const slow: ObjectStore = {
      capabilities: o0.capabilities,
      put: (k, b, o) => o0.put(k, b, o),
      get: (k, o) => o0.get(k, o),
      head: (k, o) => o0.head(k, o),
      copy: (a, b, o) => o0.copy(a, b, o),
      delete: (k, o) => o0.delete(k, o),
      list: (prefix, o) => gatedList(prefix, o),
    }
    const gatedList = (prefix: string, o?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> => {
      const inner = stores.objects.list(prefix, o)
      if (!gated) return inner
      gated = false
      return (async function* () {
        entered()
        await gate
        yield* inner
      })()
    }
    const manager = await openManager(stores.meta, slow, { dropGraceMs: 0 })
    try {
      const coll = await seedCollection(manager, 'docs')
      const seg = await flushedSegment(manager, stores.objects, coll)
      await manager.catalog.dropSegment(seg.id)
      const gc = manager.runGc()
      await inside
      const closing = manager.close()
      release()
      await expect(gc).resolves.toMatchObject({ dryRun: false })
      await closing
    } finally {
      release()
      await manager.close()
      await stores.dispose()
    }
  })
})
