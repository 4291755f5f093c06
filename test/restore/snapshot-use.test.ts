import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { flushedSegment, metaEntries, openManager, seedCollection } from './helpers.js'

/**
 * A drop and a restore of one snapshot in two processes sharing a store with conditional
 * batches (as on etcd): whichever commits second sees the first.
 */
describe('dropSnapshot against a restore in another process', () => {
  const managers: SnapshotManager[] = []
  let dir: string | undefined

  afterEach(async () => {
    for (const m of managers.splice(0)) await m.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    dir = undefined
  })

  it('refuses IN_USE when the restore commits while the drop is committing', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-use-'))
    const data = new Map<string, string>()
    let reached!: () => void
    const atGate = new Promise<void>((r) => (reached = r))
    let release!: () => void
    const released = new Promise<void>((r) => (release = r))
    let gated = false
    const storeA = new MapMetaStore({
      data,
      gate: async () => {
        if (!gated) return
        gated = false
        reached()
        await released
      },
    })
    const storeB = new MapMetaStore({ data })
    const objects = new FsObjectStore({ root: join(dir, 'objects') })
    const a = await openManager(storeA, objects, { checkIntervalMs: 60_000 })
    managers.push(a)
    const collection = await seedCollection(a, 'docs')
    await flushedSegment(a, objects, collection)
    await a.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
    const b = await openManager(storeB, objects, { checkIntervalMs: 60_000 })
    managers.push(b)

    gated = true
    const dropping = a.dropSnapshot('snap').then(
      () => undefined,
      (err: unknown) => err,
    )
    await atGate // A read the snapshot (committed, not in use) and is about to commit its drop
    const jobId = await b.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'copy' })
    release()
    expect(await dropping).toMatchObject({ code: 'IN_USE' })
    expect(storeA.conflicts).toBeGreaterThan(0)
    expect(await b.waitForRestore(jobId)).toMatchObject({ state: 'completed' })
    expect((await a.describeSnapshot('snap')).name).toBe('snap')
    // Once the job finished, the snapshot is free again and its use count is gone.
    await a.dropSnapshot('snap')
    expect(await metaEntries(storeA, 'r/snap-use')).toEqual([])
  })
})
