import { removeSnapshotUse } from './snapshot-use.js'
import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { SegmentInfo } from '../catalog-types.js'
import { idFromKey, keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { readIndexRecords } from '../meta/records.js'
import { segmentFiles } from '../meta/segment-files.js'
import { layout } from '../storage/layout.js'
import type { AbortOptions } from '../types.js'
import { chunkSize, readJob, readJobDirect, writeJob, type JobRecord, type TaskRecord } from './job-state.js'
import type { JobSource, SourceCache } from './snapshot-source.js'
import { planTask } from './target-plan.js'

/**
 * What a job writes and how it is undone: the target keys of a job (for the rollback
 * and for GC's `liveKeys`), the rollback of a failed or cancelled job, and the removal
 * of finished jobs. Every step is idempotent, so a crash anywhere is finished by the
 * next run.
 * @internal
 */

/** Keys deleted per `ObjectStore.delete` call. */
const DELETE_CHUNK = 1000

/** Tasks of a job that have started (only those can have written anything). */
async function startedTasks(ctx: ManagerContext, jobId: number, options: AbortOptions): Promise<TaskRecord[]> {
  const out: TaskRecord[] = []
  for await (const [, value] of ctx.meta.iterate(prefixRange(keys.restoreTaskPrefix(jobId)), options)) {
    const t = JSON.parse(value) as TaskRecord
    if (t.idBase !== undefined) out.push(t)
  }
  return out
}

/** The directory part of `key` up to (and including) its `depth`-th '/'-separated segment. */
function prefixOf(key: string, depth: number): string {
  return `${key.split('/').slice(0, depth).join('/')}/`
}

/** Prefixes under which a job may have written, for when its snapshot cannot be read. */
function fallbackPrefixes(job: JobRecord, tasks: readonly TaskRecord[]): string[] {
  const c = job.collectionId
  const log = { collectionId: c, partitionId: 0, segmentId: 0, fieldId: 0, logId: 0 }
  // files/insert_log/{collectionId}/…: the first three segments.
  const out = [layout.insertLog(log), layout.deltaLog(log), layout.statsLog(log), layout.bm25Log(log)].map((k) => prefixOf(k, 3))
  for (const t of tasks) {
    for (let b = t.idBase as number; b < (t.idBase as number) + (t.buildCount ?? 0); b++) {
      const ix = { buildId: b, version: 1, partitionId: 0, segmentId: 0, fieldId: 0, collectionId: c, fileName: 'x' }
      // files/index_files/{buildId}/…, files/text_log/{buildId}/…: also the first three segments.
      out.push(prefixOf(layout.indexFile(ix), 3), prefixOf(layout.textIndex(ix), 3), prefixOf(layout.jsonKeyIndex(ix), 3))
    }
  }
  return out
}

/**
 * Every target key a job may have written: the planned copies of each started task,
 * computed from the snapshot's manifests. When the snapshot cannot be read, the
 * objects found under the job's target prefixes instead.
 */
export async function* jobTargetKeys(ctx: ManagerContext, sources: SourceCache, job: JobRecord, options: AbortOptions = {}): AsyncGenerator<string> {
  const tasks = await startedTasks(ctx, job.jobId, options)
  if (tasks.length === 0) return
  let source: JobSource | undefined
  try {
    source = await sources.get(job, options)
  } catch (err) {
    throwIfAborted(options.signal)
    if (!SnapshotError.is(err, 'CORRUPT') && !SnapshotError.is(err, 'NOT_FOUND') && !SnapshotError.is(err, 'FAILED_PRECONDITION') && !SnapshotError.is(err, 'UNSUPPORTED_VERSION')) throw err
  }
  const unplanned: TaskRecord[] = []
  for (const t of tasks) {
    if (source === undefined) {
      unplanned.push(t)
      continue
    }
    let plan
    try {
      const segments = await source.segments(t, options)
      plan = planTask(
        { job, sourceChannels: source.sourceChannels, first: t.first, idBase: t.idBase as number, buildCount: t.buildCount ?? 0, now: 0 },
        segments,
      )
    } catch (err) {
      throwIfAborted(options.signal)
      if (!SnapshotError.is(err, 'CORRUPT')) throw err
      unplanned.push(t)
      continue
    }
    for (const seg of plan) for (const c of seg.copies) yield c.to
  }
  if (unplanned.length === 0) return
  for (const prefix of new Set(fallbackPrefixes(job, unplanned))) {
    for await (const o of ctx.objects.list(prefix, options)) yield o.key
  }
}

/** Deletes `keys` in chunks as they come. */
async function deleteAll(ctx: ManagerContext, source: AsyncIterable<string>, options: AbortOptions): Promise<void> {
  let chunk: string[] = []
  for await (const key of source) {
    chunk.push(key)
    if (chunk.length >= DELETE_CHUNK) {
      await ctx.objects.delete(chunk, options)
      chunk = []
    }
  }
  if (chunk.length > 0) await ctx.objects.delete(chunk, options)
}

/** Files of the segment records the target collection has (normally a subset of the planned keys). */
async function* catalogFiles(ctx: ManagerContext, collectionId: number, options: AbortOptions): AsyncGenerator<string> {
  const ids: number[] = []
  for await (const [key] of ctx.meta.iterate(prefixRange(keys.collectionSegmentPrefix(collectionId)), options)) ids.push(idFromKey(key))
  for (const id of ids) {
    const raw = await ctx.meta.get(keys.segment(id), options)
    if (raw === undefined) continue
    for (const { file } of segmentFiles(JSON.parse(raw) as SegmentInfo)) yield file.key
  }
}

/** Deletes every key under `prefix` (and, per key, the key `also` names), a chunk per transaction. */
async function deletePrefix(ctx: ManagerContext, prefix: string, options: AbortOptions, also?: (key: string) => string): Promise<void> {
  const size = also === undefined ? chunkSize(ctx.meta) : Math.max(1, Math.floor(chunkSize(ctx.meta) / 2))
  for (;;) {
    throwIfAborted(options.signal)
    const batch: string[] = []
    for await (const [key] of ctx.meta.iterate({ ...prefixRange(prefix), limit: size }, options)) batch.push(key)
    if (batch.length === 0) return
    await ctx.transactor.run(async (tx) => {
      for (const key of batch) {
        tx.del(key)
        if (also !== undefined) tx.del(also(key))
      }
    }, options)
  }
}

/**
 * Rolls back a failed or cancelled job: deletes every object it may have written, the
 * target collection's segment and index records and the collection itself, then
 * releases the target name and the snapshot, and marks the rollback done. Resolves the
 * finished record when this call finished the rollback; undefined when there was nothing
 * to do (the job is gone, not failed, or already rolled back).
 */
export async function rollbackJob(ctx: ManagerContext, sources: SourceCache, jobId: number, options: AbortOptions = {}): Promise<JobRecord | undefined> {
  const job = await readJobDirect(ctx.meta, jobId, options)
  if (job === undefined || job.rollback !== 'pending') return undefined
  await deleteAll(ctx, jobTargetKeys(ctx, sources, job, options), options)
  await deleteAll(ctx, catalogFiles(ctx, job.collectionId, options), options)
  await deletePrefix(ctx, keys.collectionSegmentPrefix(job.collectionId), options, (key) => keys.segment(idFromKey(key)))
  const done = await ctx.transactor.run(async (tx) => {
    const current = await readJob(tx, jobId)
    if (current === undefined || current.rollback !== 'pending') return undefined
    for (const ix of await readIndexRecords(tx, current.collectionId)) tx.del(keys.index(current.collectionId, ix.id))
    for (const id of current.indexIds) tx.del(keys.index(current.collectionId, id))
    const nameKey = keys.collectionName(current.targetCollectionName)
    if ((await tx.get(nameKey)) === String(current.collectionId)) tx.del(nameKey)
    tx.del(keys.collection(current.collectionId))
    tx.del(keys.collectionVersion(current.collectionId))
    const targetKey = keys.restoreTarget(current.targetCollectionName)
    if ((await tx.get(targetKey)) === String(jobId)) tx.del(targetKey)
    await removeSnapshotUse(tx, current.snapshotId, jobId)
    const finished: JobRecord = { ...current, rollback: 'done', finishedAt: ctx.now() }
    writeJob(tx, finished)
    return finished
  }, options)
  sources.forget(jobId)
  return done
}

/** Removes a finished job: its per-file and per-segment records, its tasks, then the job record. */
export async function removeJob(ctx: ManagerContext, jobId: number, options: AbortOptions = {}): Promise<void> {
  await deletePrefix(ctx, keys.restoreFileDonePrefix(jobId), options)
  await deletePrefix(ctx, keys.restoreSegmentDonePrefix(jobId), options)
  await deletePrefix(ctx, keys.restoreTaskPrefix(jobId), options)
  await ctx.transactor.run(async (tx) => {
    if ((await readJob(tx, jobId)) !== undefined) tx.del(keys.restoreJob(jobId))
  }, options)
}
