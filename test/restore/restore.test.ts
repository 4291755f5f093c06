import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { keys } from '../../src/meta/keys.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { prefixRange, type MetaRange } from '../../src/meta/meta-store.js'
import type { AbortOptions } from '../../src/types.js'
import type { RestoreJobInfo } from '../../src/restore/job-types.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { layout } from '../../src/storage/layout.js'
import {
  WrappedObjects,
  delay,
  expectSameFiles,
  flushedSegment,
  fsBackends,
  s3Backend,
  keysOf,
  metaEntries,
  objectKeys,
  openManager,
  seedCollection,
  type Stores,
} from './helpers.js'

/** SPEC section 6 on every filesystem backend: the happy paths and the user-visible errors. */

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<SnapshotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, `expected a ${code} rejection`).toBeInstanceOf(SnapshotError)
  expect((err as SnapshotError).code).toBe(code)
  if (message !== undefined) expect((err as SnapshotError).message).toMatch(message)
  return err as SnapshotError
}

const s3 = s3Backend()
afterAll(() => s3.close())

describe.each([...fsBackends, s3])('restore on $name', (backend) => {
  let stores: Stores
  let objects: WrappedObjects
  let manager: SnapshotManager

  beforeEach(async () => {
    stores = await backend.make()
    objects = new WrappedObjects(stores.objects)
    manager = await openManager(stores.meta, objects)
  })

  afterEach(async () => {
    await manager.close()
    await stores.dispose()
  })

  it('restores every file byte for byte under new IDs, without the mutations made after the snapshot', async () => {
    const coll = await seedCollection(manager, 'docs')
    const segs = [
      await flushedSegment(manager, objects, coll, { numRows: 100 }),
      await flushedSegment(manager, objects, coll, { numRows: 250, partition: 'p1' }),
      await flushedSegment(manager, objects, coll, { numRows: 7, indexes: false }),
    ]
    const growing = await manager.catalog.allocSegment({ collection: 'docs' })
    const snap = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap1' })
    expect(snap.rowCount).toBe(357)

    // Mutations after the snapshot: a new segment, a compaction, extra deletes.
    const later = await flushedSegment(manager, objects, coll, { numRows: 1000 })
    await objects.put('files/compacted/1', new Uint8Array(32))
    const compacted = [{ fieldId: coll.schema.fields[0].fieldId, files: [{ key: 'files/compacted/1', size: 32 }] }]
    await manager.catalog.compact({ collection: 'docs', sources: [segs[0].id, segs[2].id], result: { numRows: 90, binlogs: compacted } })
    await manager.catalog.addDeltalogs(segs[1].id, [{ fieldId: coll.schema.fields[0].fieldId, files: [{ key: 'files/extra-deletes', size: 0 }] }])

    const events: string[] = []
    manager.on('restoreStarted', (j) => events.push(`started:${j.state}`))
    manager.on('restoreFinished', (j) => events.push(`finished:${j.state}`))
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap1', targetCollectionName: 'restored' })
    const progress: number[] = []
    const done = await manager.waitForRestore(jobId, { onProgress: (j) => progress.push(j.progress) })
    expect(done).toMatchObject({
      jobId,
      state: 'completed',
      progress: 100,
      reason: '',
      snapshotName: 'snap1',
      sourceCollectionId: coll.id,
      targetCollectionName: 'restored',
      copiedSegments: 3,
      totalSegments: 3,
      totalBytes: snap.sizeBytes,
      copiedBytes: snap.sizeBytes,
    })
    expect(done.finishedAt).toBeGreaterThanOrEqual(done.createdAt)
    expect(done.timeCostMs).toBe((done.finishedAt as number) - done.createdAt)
    expect(progress.at(-1)).toBe(100)
    expect([...progress].sort((a, b) => a - b)).toEqual(progress)
    expect(events).toEqual(['started:pending', 'finished:completed'])

    const restored = await manager.catalog.getCollection('restored')
    expect(restored).toMatchObject({ id: done.collectionId, state: 'created', shardsNum: 2, properties: coll.properties })
    expect(restored.schema).toEqual(coll.schema)
    expect(restored.partitions.map((p) => p.name)).toEqual(coll.partitions.map((p) => p.name))
    for (const p of restored.partitions) expect(coll.partitions.map((q) => q.id)).not.toContain(p.id)
    expect((await manager.catalog.listCollections()).map((c) => c.name).sort()).toEqual(['docs', 'restored'])
    const [srcIdx, dstIdx] = [await manager.catalog.listIndexes('docs'), await manager.catalog.listIndexes('restored')]
    expect(dstIdx).toEqual(srcIdx)

    const segments = await manager.catalog.listSegments('restored')
    expect(segments).toHaveLength(3)
    expect(segments.every((s) => s.state === 'flushed' && s.collectionId === restored.id)).toBe(true)
    expect(segments.map((s) => s.id)).not.toContain(later.id)
    expect(segments.map((s) => s.id)).not.toContain(growing.id)
    expect(segments.reduce((n, s) => n + s.numRows, 0)).toBe(snap.rowCount)
    await expectSameFiles(objects, segs, segments)

    // Partitions map by name, channels are the target's, keys are built from target IDs.
    const byName = new Map(restored.partitions.map((p) => [p.name, p.id]))
    const sorted = [...segments].sort((a, b) => a.id - b.id)
    expect(sorted[1].partitionId).toBe(byName.get('p1'))
    expect(sorted[0].partitionId).toBe(byName.get('_default'))
    for (const s of segments) {
      expect(restored.channels).toContain(s.channel)
      for (const fb of s.binlogs) {
        for (const f of fb.files) {
          expect(f.key).toBe(layout.insertLog({ collectionId: restored.id, partitionId: s.partitionId, segmentId: s.id, fieldId: fb.fieldId, logId: f.logId as number }))
        }
      }
      for (const ix of s.indexes) {
        expect(srcIdx.map((i) => i.id)).toContain(ix.indexId)
        for (const f of ix.files) expect(f.key.startsWith(`files/index_files/${ix.buildId}/1/${s.partitionId}/${s.id}/`)).toBe(true)
      }
      for (const t of s.textIndexes) for (const f of t.files) expect(f.key).toBe(layout.textIndex({ buildId: t.buildId, version: 1, collectionId: restored.id, partitionId: s.partitionId, segmentId: s.id, fieldId: t.fieldId, fileName: 'index' }))
      for (const j of s.jsonKeyIndexes) for (const f of j.files) expect(f.key).toBe(layout.jsonKeyIndex({ buildId: j.buildId, version: 1, collectionId: restored.id, partitionId: s.partitionId, segmentId: s.id, fieldId: j.fieldId, fileName: 'keys' }))
    }
    const buildIds = segments.flatMap((s) => [...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].map((i) => i.buildId))
    const srcBuildIds = segs.flatMap((s) => [...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].map((i) => i.buildId))
    expect(new Set(buildIds).size).toBe(buildIds.length)
    for (const b of buildIds) expect(srcBuildIds).not.toContain(b)
    expect(objects.copyCount).toBe(segments.flatMap(keysOf).length)

    // Guards are released; the snapshot can go without affecting the restored collection.
    expect(await metaEntries(stores.meta, 'r/target/')).toEqual([])
    expect(await metaEntries(stores.meta, 'r/snap-use')).toEqual([])
    await manager.dropSnapshot('snap1')
    await expectSameFiles(objects, segs, await manager.catalog.listSegments('restored'))
  })

  it('completes an empty snapshot at once', async () => {
    await seedCollection(manager, 'empty')
    await manager.createSnapshot({ collectionName: 'empty', snapshotName: 'nothing' })
    const jobId = await manager.restoreSnapshot({ snapshotName: 'nothing', targetCollectionName: 'empty2' })
    const done = await manager.waitForRestore(jobId)
    expect(done).toMatchObject({ state: 'completed', progress: 100, copiedSegments: 0, totalSegments: 0, totalBytes: 0 })
    expect(await manager.catalog.getCollection('empty2')).toMatchObject({ state: 'created' })
    expect(await manager.catalog.listIndexes('empty2')).toEqual(await manager.catalog.listIndexes('empty'))
    expect(objects.copyCount).toBe(0)
  })

  it('restores a restored collection, and restores after the source collection was dropped', async () => {
    const coll = await seedCollection(manager, 'docs')
    const segs = [await flushedSegment(manager, objects, coll), await flushedSegment(manager, objects, coll, { partition: 'p1' })]
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
    await manager.catalog.dropCollection('docs')
    await expect(manager.catalog.getCollection('docs')).rejects.toMatchObject({ code: 'NOT_FOUND' })

    await manager.waitForRestore(await manager.restoreSnapshot({ snapshotName: 'a', targetCollectionName: 'gen1' }))
    const gen1 = await manager.catalog.listSegments('gen1')
    await expectSameFiles(objects, segs, gen1)

    await manager.createSnapshot({ collectionName: 'gen1', snapshotName: 'b' })
    await manager.waitForRestore(await manager.restoreSnapshot({ snapshotName: 'b', targetCollectionName: 'gen2' }))
    const gen2 = await manager.catalog.listSegments('gen2')
    await expectSameFiles(objects, gen1, gen2)
    await expectSameFiles(objects, segs, gen2)
    const [c1, c2] = [await manager.catalog.getCollection('gen1'), await manager.catalog.getCollection('gen2')]
    expect(c2.schema).toEqual(c1.schema)
    expect(await manager.catalog.listIndexes('gen2')).toEqual(await manager.catalog.listIndexes('gen1'))
  })

  it('lists jobs, filters them by target name, and reports unknown jobs and snapshots as NOT_FOUND', async () => {
    const coll = await seedCollection(manager, 'docs')
    await flushedSegment(manager, objects, coll)
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    const a = await manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'a' })
    const b = await manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'b' })
    await Promise.all([manager.waitForRestore(a), manager.waitForRestore(b)])
    expect((await manager.listRestoreJobs()).map((j) => j.jobId)).toEqual([a, b])
    expect((await manager.listRestoreJobs({ collectionName: 'b' })).map((j) => [j.jobId, j.targetCollectionName])).toEqual([[b, 'b']])
    expect(await manager.listRestoreJobs({ collectionName: 'zzz' })).toEqual([])
    expect(await manager.getRestoreState(a)).toMatchObject({ jobId: a, state: 'completed' })

    await rejectsWith(manager.getRestoreState(987654321), 'NOT_FOUND', /restore job not found/)
    await rejectsWith(manager.waitForRestore(987654321), 'NOT_FOUND', /restore job not found/)
    await rejectsWith(manager.cancelRestore(987654321), 'NOT_FOUND', /restore job not found/)
    const before = await metaEntries(stores.meta)
    await rejectsWith(manager.restoreSnapshot({ snapshotName: 'nope', targetCollectionName: 'c' }), 'NOT_FOUND', /snapshot not found/)
    expect(await metaEntries(stores.meta)).toEqual(before)
  })

  it('rejects a taken or invalid target name with ALREADY_EXISTS / INVALID_ARGUMENT and writes nothing', async () => {
    const coll = await seedCollection(manager, 'docs')
    await flushedSegment(manager, objects, coll)
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    objects.beforeCopy = (_from, _to, signal) => Promise.race([gate, delay(60_000, signal)])
    const running = await manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'busy' })
    // Once a copy started, the running job has written everything it writes before copying.
    while (objects.started.length === 0) await delay(5)
    // The target of a running restore is taken, though not listed.
    expect((await manager.catalog.listCollections()).map((c) => c.name)).toEqual(['docs'])
    const before = await metaEntries(stores.meta)
    const keysBefore = await objectKeys(objects)
    await rejectsWith(manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'docs' }), 'ALREADY_EXISTS', /collection already exists/)
    await rejectsWith(manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'busy' }), 'ALREADY_EXISTS', /collection already exists/)
    for (const bad of ['', '1abc', 'a-b', 'a b', 'x'.repeat(256), '../etc']) {
      await rejectsWith(manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: bad }), 'INVALID_ARGUMENT')
    }
    await rejectsWith(manager.restoreSnapshot({ snapshotName: '../s', targetCollectionName: 'ok' }), 'INVALID_ARGUMENT')
    await expect(manager.catalog.createCollection({ name: 'busy', schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }] } })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' })
    await rejectsWith(manager.createSnapshot({ collectionName: 'busy', snapshotName: 'nope' }), 'FAILED_PRECONDITION')
    const after = (await metaEntries(stores.meta)).filter(([k]) => !k.startsWith('r/'))
    expect(after).toEqual(before.filter(([k]) => !k.startsWith('r/')))
    expect(await objectKeys(objects)).toEqual(keysBefore)
    release()
    expect(await manager.waitForRestore(running)).toMatchObject({ state: 'completed' })
  })

  it('emits throttled progress events only to listeners and reports progress that never decreases', async () => {
    const coll = await seedCollection(manager, 'docs')
    for (let i = 0; i < 12; i++) await flushedSegment(manager, objects, coll, { indexes: false })
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    await manager.close()
    manager = await openManager(stores.meta, objects, { maxSegmentsPerCopyTask: 2, restoreConcurrency: 2, progressThrottleMs: 0 })
    objects.beforeCopy = () => delay(2)
    const seen: RestoreJobInfo[] = []
    manager.on('restoreProgress', (j) => seen.push(j))
    const jobId = await manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'r' })
    const states: RestoreJobInfo[] = []
    await manager.waitForRestore(jobId, { onProgress: (j) => states.push(j) })
    expect(seen.length).toBeGreaterThan(1)
    for (const list of [seen, states]) {
      const p = list.map((j) => j.progress)
      expect([...p].sort((a, b) => a - b)).toEqual(p)
      const bytes = list.map((j) => j.copiedBytes)
      expect([...bytes].sort((a, b) => a - b)).toEqual(bytes)
    }
    expect(states.at(-1)).toMatchObject({ state: 'completed', progress: 100, copiedSegments: 12 })
    // 12 segments in tasks of 2: six task records.
    expect((await metaEntries(stores.meta, `r/task/`)).length).toBe(6)
  })
})

describe('restore checker ticks', () => {
  it('looks at the one job whose task settled, not at every retained job', async () => {
    const jobScan = prefixRange(keys.restoreJobPrefix)
    /** Counts range reads over every job record. */
    class CountingMeta extends MemoryMetaStore {
      jobScans = 0
      override iterate(range?: MetaRange, options?: AbortOptions) {
        if (range?.gte === jobScan.gte && range?.lt === jobScan.lt) this.jobScans++
        return super.iterate(range, options)
      }
    }
    const stores = await fsBackends[0].make()
    const meta = new CountingMeta()
    // No interval tick during the test: only the start() tick scans every job.
    let manager = await openManager(meta, stores.objects, { checkIntervalMs: 3_600_000, maxSegmentsPerCopyTask: 1, restoreConcurrency: 2 })
    try {
      const coll = await seedCollection(manager, 'docs')
      for (let i = 0; i < 12; i++) await flushedSegment(manager, stores.objects, coll)
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
      for (let i = 0; i < 3; i++) await manager.waitForRestore(await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: `r${i}` }))
      await manager.close()
      manager = await openManager(meta, stores.objects, { checkIntervalMs: 3_600_000, maxSegmentsPerCopyTask: 1, restoreConcurrency: 2 })
      meta.jobScans = 0
      // 12 tasks settle; with a full scan per settled task this would be 12 or more.
      const job = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'last' })
      await manager.waitForRestore(job)
      expect((await manager.getRestoreState(job)).state).toBe('completed')
      expect((await manager.listRestoreJobs()).length).toBe(4)
      expect(meta.jobScans).toBeLessThanOrEqual(1)
    } finally {
      await manager.close()
      await stores.dispose()
    }
  })
})
