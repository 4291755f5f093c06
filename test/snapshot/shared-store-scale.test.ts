import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { flushedSegment, objectKeys, openManager, seedCollection, snapshotProblems } from './env.js'

/**
 * SPEC section 11 on a store that, like etcd, checks every read a transaction recorded:
 * each of these collections holds more segments than a batch may carry operations or
 * expectations (64), every segment with binlogs and three kinds of index, so a step that
 * reads or writes per segment in one transaction fails here (the suite's batch guard
 * rejects it). The 2,000-segment run on a real etcd is `test/multi/etcd-scale.test.ts`.
 */
describe('catalog and snapshot operations past the batch limits, on a shared-conditional store', () => {
  const SEGMENTS = 90
  const IN_P1 = 70
  let dir: string
  let meta: MapMetaStore
  let objects: FsObjectStore
  let manager: SnapshotManager
  let coll: CollectionInfo
  let segs: SegmentInfo[]

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-shared-scale-'))
    meta = new MapMetaStore({ sharedConditionalBatch: true })
    objects = new FsObjectStore({ root: join(dir, 'objects'), fsync: false })
    manager = await openManager(meta, objects, { dropGraceMs: 0, orphanGraceMs: 0, checkIntervalMs: 20 })
    coll = await seedCollection(manager, 'docs')
    segs = []
    for (let i = 0; i < SEGMENTS; i++) segs.push(await flushedSegment(manager, objects, coll, { numRows: 5 }))
    for (let i = 0; i < IN_P1; i++) segs.push(await flushedSegment(manager, objects, coll, { numRows: 5, partition: 'p1' }))
  }, 120_000)

  afterAll(async () => {
    await manager?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('snapshot, drop the index and a partition, restore, GC, drop everything: every step fits and nothing needed is deleted', async () => {
    const s1 = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's1' })
    expect(s1.segmentCount).toBe(SEGMENTS + IN_P1)

    // The index and a partition go; the snapshot keeps their files.
    await manager.catalog.dropIndex('docs', 'vec_idx')
    await manager.catalog.dropPartition('docs', 'p1')
    expect((await manager.catalog.listSegments('docs')).filter((s) => s.state !== 'dropped')).toHaveLength(SEGMENTS)
    await manager.runGc()
    expect(await snapshotProblems(meta, objects)).toEqual([])
    expect(await manager.verifySnapshot('s1')).toMatchObject({ ok: true })

    // A restore of all of it: its accept, tasks, progress and registration batches.
    const jobId = await manager.restoreSnapshot({ snapshotName: 's1', targetCollectionName: 'copy' })
    expect(await manager.waitForRestore(jobId)).toMatchObject({ state: 'completed', copiedSegments: SEGMENTS + IN_P1 })
    const copy = await manager.catalog.listSegments('copy')
    expect(copy).toHaveLength(SEGMENTS + IN_P1)
    expect(copy.every((s) => s.indexes.length === 1)).toBe(true)

    // The snapshot goes: GC deletes the dropped index's builds and the partition's segments, keeps the rest.
    await manager.dropSnapshot('s1')
    await manager.runGc()
    expect(await manager.catalog.listDroppedIndexes()).toEqual([])
    const left = new Set(await objectKeys(objects, 'files/'))
    for (const s of segs) {
      const binlog = s.binlogs[0].files[0].key
      expect(left.has(binlog), binlog).toBe(s.partitionId === coll.partitions[0].id)
      expect(left.has(s.indexes[0].files[0].key)).toBe(false)
    }

    // Both collections go, and GC leaves only what no collection or snapshot holds: nothing.
    await manager.catalog.dropCollection('docs')
    await manager.runGc()
    expect(await objectKeys(objects, `files/insert_log/${coll.id}/`)).toEqual([])
    for (const s of copy) expect(await objects.head(s.binlogs[0].files[0].key)).toBeDefined()
    await manager.catalog.dropCollection('copy')
    await manager.runGc()
    expect(await objectKeys(objects, 'files/')).toEqual([])
    expect(await manager.catalog.listDroppedCollections()).toEqual([])
  }, 120_000)
})
