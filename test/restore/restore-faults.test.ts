import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { ManagerContext } from '../../src/context.js'
import { TypedEmitter, type SnapshotManagerEvents } from '../../src/events.js'
import { Transactor } from '../../src/meta/transaction.js'
import { resolveOptions } from '../../src/options.js'
import { RestoreService } from '../../src/restore/restore-service.js'
import { WrappedObjects, delay, expectSameFiles, flushedSegment, fsBackends, metaEntries, s3Backend, objectKeys, openManager, recordedCopies, recordedKeys, seedCollection, type Stores } from './helpers.js'

/** Failures, timeouts, cancellation, the IN_USE guard and resuming after close(). */

async function failure(p: Promise<unknown>): Promise<SnapshotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SnapshotError)
  return err as SnapshotError
}

/** `liveKeys` as GC sees it, from a second (stopped) service over the same stores. */
async function liveKeys(manager: SnapshotManager, stores: Stores): Promise<Set<string>> {
  const ctx: ManagerContext = {
    meta: stores.meta,
    objects: stores.objects,
    transactor: new Transactor(stores.meta),
    catalog: manager.catalog,
    options: resolveOptions({ meta: stores.meta, objects: stores.objects }),
    events: new TypedEmitter<SnapshotManagerEvents>(),
    now: Date.now,
  }
  const service = new RestoreService(ctx)
  const out = new Set<string>()
  for await (const key of service.liveKeys()) out.add(key)
  return out
}

const s3 = s3Backend()
afterAll(() => s3.close())

describe.each([...fsBackends, s3])('restore faults on $name', (backend) => {
  let stores: Stores
  let objects: WrappedObjects
  let manager: SnapshotManager
  let coll: CollectionInfo
  let segs: SegmentInfo[]
  /** Objects and restore-free metadata before the restore started. */
  let objectsBefore: string[]

  async function restart(options: Parameters<typeof openManager>[2] = {}): Promise<void> {
    await manager.close()
    manager = await openManager(stores.meta, objects, options)
  }

  /** Everything the failed job made is gone: collection, records, guards, objects. */
  async function expectRolledBack(jobId: number, target: string): Promise<void> {
    await expect(manager.catalog.getCollection(target)).rejects.toMatchObject({ code: 'NOT_FOUND' })
    expect((await manager.catalog.listCollections()).map((c) => c.name)).toEqual(['docs'])
    expect(await objectKeys(objects)).toEqual(objectsBefore)
    const job = await manager.getRestoreState(jobId)
    expect(await metaEntries(stores.meta, keys.restoreTarget(target))).toEqual([])
    expect(await metaEntries(stores.meta, 'r/snap-use')).toEqual([])
    expect(await metaEntries(stores.meta, keys.collectionSegmentPrefix(job.collectionId))).toEqual([])
    expect(await metaEntries(stores.meta, keys.indexPrefix(job.collectionId))).toEqual([])
    expect(await stores.meta.get(keys.collection(job.collectionId))).toBeUndefined()
    expect(job.finishedAt).toBeDefined()
  }

  beforeEach(async () => {
    stores = await backend.make()
    objects = new WrappedObjects(stores.objects)
    manager = await openManager(stores.meta, objects)
    coll = await seedCollection(manager, 'docs')
    segs = []
    for (let i = 0; i < 6; i++) segs.push(await flushedSegment(manager, objects, coll, { partition: i % 2 === 0 ? '_default' : 'p1' }))
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
    await restart({ maxSegmentsPerCopyTask: 2, restoreConcurrency: 2 })
    objectsBefore = await objectKeys(objects)
  })

  afterEach(async () => {
    await manager.close()
    await stores.dispose()
  })

  it('fails the job when a copy fails, with the reason, and rolls everything back', async () => {
    let n = 0
    objects.beforeCopy = async () => {
      if (++n === 25) throw new Error('disk on fire')
    }
    const failed: string[] = []
    manager.on('restoreFinished', (j) => failed.push(`${j.state}:${j.reason}`))
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'restored' })
    const err = await failure(manager.waitForRestore(jobId))
    expect(err.code).toBe('RESTORE_FAILED')
    expect(err.message).toMatch(/disk on fire/)
    const job = await manager.getRestoreState(jobId)
    expect(job).toMatchObject({ state: 'failed' })
    expect(job.reason).toMatch(/copy task \d+ failed: .*disk on fire/)
    expect(failed).toEqual([`failed:${job.reason}`])
    await expectRolledBack(jobId, 'restored')
    // Cancelling a finished job is a no-op; the name is free again and the snapshot droppable.
    await manager.cancelRestore(jobId)
    expect((await manager.getRestoreState(jobId)).state).toBe('failed')
    objects.beforeCopy = undefined
    const again = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'restored' })
    await manager.waitForRestore(again)
    await expectSameFiles(objects, segs, await manager.catalog.listSegments('restored'))
  })

  // Byte copies report the size they copied. (Hard links and S3 copies report the size hint
  // the restore passes, so there a changed source shows up in verifySnapshot instead.)
  it.skipIf(backend === s3)('fails a byte-copy job whose source no longer has the size the snapshot recorded', async () => {
    await restart({ maxSegmentsPerCopyTask: 2, restoreConcurrency: 2, copyMode: 'copy' })
    const victim = segs[3].binlogs![0].files[0]
    await objects.put(victim.key, new Uint8Array(victim.size + 5))
    objectsBefore = await objectKeys(objects)
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'changed' })
    const err = await failure(manager.waitForRestore(jobId))
    expect(err.code).toBe('RESTORE_FAILED')
    expect((await manager.getRestoreState(jobId)).reason).toMatch(new RegExp(`copied ${victim.key} to .*: ${victim.size + 5} bytes, the snapshot records ${victim.size}`))
    await expectRolledBack(jobId, 'changed')
  })

  it('fails a job that runs past restoreTimeoutMs and rolls it back', async () => {
    await restart({ maxSegmentsPerCopyTask: 2, restoreConcurrency: 2, restoreTimeoutMs: 150 })
    objects.beforeCopy = (_from, _to, signal) => delay(40, signal)
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'slow' })
    const err = await failure(manager.waitForRestore(jobId))
    expect(err.code).toBe('RESTORE_FAILED')
    expect(err.message).toMatch(/timed out/)
    expect(await manager.getRestoreState(jobId)).toMatchObject({ state: 'failed' })
    await expectRolledBack(jobId, 'slow')
  })

  it('cancels a running job and rolls it back; IN_USE guards its snapshot until then', async () => {
    let copies = 0
    objects.beforeCopy = async (_from, _to, signal) => {
      copies++
      await delay(15, signal)
    }
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'c1' })
    const waiting = failure(manager.waitForRestore(jobId))
    while (copies < 8) await delay(5)
    const inUse = await failure(manager.dropSnapshot('snap'))
    expect(inUse.code).toBe('IN_USE')
    await manager.cancelRestore(jobId)
    const job = await manager.getRestoreState(jobId)
    expect(job).toMatchObject({ state: 'cancelled' })
    expect(job.progress).toBeLessThan(100)
    const err = await waiting
    expect(err.code).toBe('RESTORE_FAILED')
    expect(err.message).toMatch(/cancelled/)
    await expectRolledBack(jobId, 'c1')
    await manager.dropSnapshot('snap')
  })

  it('reports every object a running job wrote in liveKeys, and nothing once it completed', async () => {
    let copies = 0
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    objects.beforeCopy = async () => {
      if (++copies > 30) await gate
    }
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'r' })
    while (objects.copyCount < 30) await delay(5)
    const written = (await objectKeys(objects)).filter((k) => !objectsBefore.includes(k))
    expect(written.length).toBeGreaterThanOrEqual(30)
    const live = await liveKeys(manager, stores)
    for (const key of written) expect(live.has(key), key).toBe(true)
    release()
    await manager.waitForRestore(jobId)
    expect(await liveKeys(manager, stores)).toEqual(new Set())
  })

  it('is safe against GC with zero grace: nothing a running restore wrote is collected', async () => {
    await restart({ maxSegmentsPerCopyTask: 2, restoreConcurrency: 2, orphanGraceMs: 0, dropGraceMs: 0 })
    objects.beforeCopy = (_from, _to, signal) => delay(5, signal)
    // Drop the source collection too: the snapshot alone keeps its files.
    await manager.catalog.dropCollection('docs')
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'r' })
    let passes = 0
    for (;;) {
      const state = await manager.getRestoreState(jobId)
      if (state.state === 'completed') break
      expect(state.state).not.toBe('failed')
      await manager.runGc()
      passes++
    }
    expect(passes).toBeGreaterThan(0)
    await manager.waitForRestore(jobId)
    await manager.runGc()
    await expectSameFiles(objects, segs, await manager.catalog.listSegments('r'))
  })

  it('removes finished jobs and their records after restoreJobRetentionMs', async () => {
    await restart({ maxSegmentsPerCopyTask: 2, restoreConcurrency: 2, restoreJobRetentionMs: 0 })
    const done = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'ok' })
    await manager.waitForRestore(done).catch(() => undefined)
    let n = 0
    objects.beforeCopy = async () => {
      if (++n === 3) throw new Error('nope')
    }
    const failed = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'bad' })
    await manager.waitForRestore(failed).catch(() => undefined)
    for (let i = 0; i < 300 && (await manager.listRestoreJobs()).length > 0; i++) await delay(10)
    expect(await manager.listRestoreJobs()).toEqual([])
    await expect(manager.getRestoreState(done)).rejects.toMatchObject({ code: 'NOT_FOUND' })
    for (const prefix of ['r/job/', 'r/task/', 'r/done/', 'r/seg-done/', 'r/target/', 'r/snap-use/', 'r/snap-uses/']) expect(await metaEntries(stores.meta, prefix)).toEqual([])
    // The completed restore's collection stays; the failed one's is gone.
    await expectSameFiles(objects, segs, await manager.catalog.listSegments('ok'))
    await expect(manager.catalog.getCollection('bad')).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })

  it('keeps the snapshot IN_USE while a job runs and lets it go once the job completes', async () => {
    objects.beforeCopy = (_from, _to, signal) => delay(2, signal)
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'r' })
    expect((await failure(manager.dropSnapshot('snap'))).code).toBe('IN_USE')
    await manager.waitForRestore(jobId)
    await manager.dropSnapshot('snap')
    await expectSameFiles(objects, segs, await manager.catalog.listSegments('r'))
  })

  it('resumes after close() and copies no recorded file twice', async () => {
    let copies = 0
    objects.beforeCopy = async (_from, _to, signal) => {
      copies++
      await delay(10, signal)
    }
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'r' })
    // Each task's first segment (13 files) is copied and recorded by then.
    while (objects.copyCount < 40) await delay(5)
    expect(copies).toBeLessThan(78)
    await manager.close()
    await stores.meta.open()
    const marks = await recordedCopies(stores.meta, jobId)
    expect(marks.files.size + marks.segmentIds.size).toBeGreaterThan(0)
    const state = JSON.parse((await stores.meta.get(keys.restoreJob(jobId))) as string) as { state: string; copiedSegments: number }
    expect(state.state).toBe('in_progress')
    await stores.meta.close()
    const first = new Map(objects.copies)
    objects.copies.clear()
    objects.beforeCopy = undefined
    manager = await openManager(stores.meta, objects, { maxSegmentsPerCopyTask: 2, restoreConcurrency: 2 })
    const finished = await manager.waitForRestore(jobId)
    expect(finished).toMatchObject({ state: 'completed', progress: 100, copiedSegments: 6 })
    const restored = await manager.catalog.listSegments('r')
    await expectSameFiles(objects, segs, restored)
    const done = recordedKeys(marks, restored)
    expect(done.size).toBeGreaterThan(0)
    for (const key of done) expect(objects.copies.has(key), `${key} copied again`).toBe(false)
    for (const n of objects.copies.values()) expect(n).toBe(1)
    const all = restored.flatMap((s) => [...s.binlogs, ...s.statslogs, ...s.deltalogs, ...s.bm25logs].flatMap((b) => b.files.map((f) => f.key)))
    for (const key of all) expect(first.has(key) || objects.copies.has(key)).toBe(true)
    expect(objects.copies.size).toBeLessThan(restored.reduce((n, s) => n + [...s.binlogs, ...s.statslogs, ...s.deltalogs, ...s.bm25logs, ...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].reduce((m, l) => m + l.files.length, 0), 0))
  })

  it('resumes a rollback interrupted by close()', async () => {
    let n = 0
    objects.beforeCopy = async () => {
      if (++n === 20) throw new Error('boom')
    }
    let broken = true
    const innerDelete = objects.delete.bind(objects)
    objects.delete = async (k, o) => {
      if (broken) throw new Error('store went away')
      return innerDelete(k, o)
    }
    const errors: Error[] = []
    manager.on('loopError', (e) => errors.push(e))
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'r' })
    const err = await failure(manager.waitForRestore(jobId))
    expect(err.code).toBe('RESTORE_FAILED')
    expect(err.details).toMatchObject({ rolledBack: false })
    expect(errors.map((e) => e.message).join('\n')).toMatch(/store went away/)
    // The target is still taken until the rollback finishes.
    await expect(manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'r' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' })
    await manager.close()
    await stores.meta.open()
    expect(JSON.parse((await stores.meta.get(keys.restoreJob(jobId))) as string)).toMatchObject({ state: 'failed', rollback: 'pending' })
    await stores.meta.close()
    broken = false
    manager = await openManager(stores.meta, objects)
    for (let i = 0; i < 200 && (await manager.getRestoreState(jobId)).finishedAt === undefined; i++) await delay(10)
    await expectRolledBack(jobId, 'r')
  })
})
