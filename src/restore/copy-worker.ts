import { sharedAbortController } from '../util/abort.js'
import type { ManagerContext } from '../context.js'
import { SnapshotError, abortError, throwIfAborted } from '../errors.js'
import { keys } from '../meta/keys.js'
import { bumpCollectionVersion, writeSegment } from '../meta/records.js'
import type { MetaTxn } from '../meta/transaction.js'
import { DoneRecorder } from './done-recorder.js'
import {
  JobStoppedError,
  readJob,
  readJobDirect,
  readTask,
  writeJob,
  writeTask,
  type JobRecord,
  type TaskRecord,
} from './job-state.js'
import type { SourceCache } from './snapshot-source.js'
import { countTaskIds, planTask, type FileCopy, type PlannedSegment } from './target-plan.js'

/**
 * One copy task: copies every file of its segments to target keys, records per-file
 * completion durably (group-committed, a segment's marker with its last file), then
 * registers the target segments in one transaction. A resumed task copies only what an
 * earlier run did not record.
 * @internal
 */

/**
 * Object copies in flight per running task slot: all tasks together run up to
 * `restoreConcurrency × FILE_CONCURRENCY` copies, and a task may use the slots others
 * leave free (a job of few tasks still copies at full width).
 */
export const FILE_CONCURRENCY = 4

/** A shared limit on object copies in flight (see `Limiter`). */
export interface CopySlots {
  /** Copies allowed in flight at once. */
  readonly concurrency: number
  /** Runs `fn` once a slot is free. */
  add<T>(fn: () => Promise<T>): Promise<T>
}

/** What a worker needs besides the task. */
export interface CopyWorkerDeps {
  ctx: ManagerContext
  /** Snapshots of the jobs. */
  sources: SourceCache
  /** Shared by every task of the process. */
  copySlots: CopySlots
  /** Called after a segment was counted in the job's progress, with the updated record. */
  onProgress(job: JobRecord): void
}

/** Throws {@link JobStoppedError} unless the job is still running. */
async function runningJob(tx: MetaTxn, jobId: number): Promise<JobRecord> {
  const job = await readJob(tx, jobId)
  if (job === undefined || job.state !== 'in_progress') throw new JobStoppedError(jobId, job?.state ?? 'removed')
  return job
}

/** Step 1: counts the task as started and allocates its IDs on the first run. */
async function prepare(deps: CopyWorkerDeps, jobId: number, taskId: number, count: () => { buildCount: number; logIdCount: number }, signal: AbortSignal): Promise<{ task: TaskRecord; resumed: boolean } | undefined> {
  return deps.ctx.transactor.run(async (tx) => {
    await runningJob(tx, jobId)
    const task = await readTask(tx, jobId, taskId)
    if (task === undefined) throw new SnapshotError('CORRUPT', `restore job ${jobId} has no task ${taskId}`)
    if (task.state === 'completed') return undefined
    const updated: TaskRecord = { ...task, state: 'in_progress', attempts: task.attempts + 1 }
    if (updated.idBase === undefined) {
      const { buildCount, logIdCount } = count()
      updated.idBase = buildCount + logIdCount > 0 ? await tx.allocIds(buildCount + logIdCount) : 0
      updated.buildCount = buildCount
      updated.logIdCount = logIdCount
    }
    writeTask(tx, updated)
    return { task: updated, resumed: task.attempts > 0 }
  }, { signal })
}

/** A segment of a task and the files of it that still have to be copied. */
interface Work {
  segment: PlannedSegment
  copies: FileCopy[]
}

/** Segments (and of those, files) a resumed task still has to copy. */
async function remaining(deps: CopyWorkerDeps, jobId: number, plan: readonly PlannedSegment[], signal: AbortSignal): Promise<Work[]> {
  const { meta } = deps.ctx
  const out: Work[] = []
  for (const segment of plan) {
    if ((await meta.get(keys.restoreSegmentDone(jobId, segment.ordinal), { signal })) !== undefined) continue
    const copies: FileCopy[] = []
    for (const c of segment.copies) if ((await meta.get(keys.restoreFileDone(jobId, c.to), { signal })) === undefined) copies.push(c)
    out.push({ segment, copies })
  }
  return out
}

/**
 * Copies `work` through the shared copy slots. Copies are recorded as they finish (a
 * segment as complete with its last file), with group commit; resolves once every copy
 * is done and durably recorded. When `signal` fires no new copy starts, and the copies
 * under way finish (only `ioSignal` cuts them short).
 */
async function copyAll(deps: CopyWorkerDeps, jobId: number, work: readonly Work[], signal: AbortSignal, ioSignal: AbortSignal | undefined): Promise<void> {
  const { ctx } = deps
  const mode = ctx.options.copyMode
  // The size check below compares what the store measured with what the snapshot records.
  // A store that can hard-link reports a size hint back unmeasured, so it gets none and
  // stats the link (one stat per file). A server-side copy (S3) keeps the hint, which saves
  // the HeadObject of the source, but CopyObject reports no size: the target is looked up
  // after the copy instead (one HeadObject per file; measured in the restore-s3 bench),
  // unless `verifyCopiedSizes` is off.
  const hardLink = ctx.objects.capabilities.hardLink
  const sizeHint = (copy: FileCopy): number | undefined => (hardLink ? undefined : copy.size)
  const measured = async (copy: FileCopy, reported: number): Promise<number> => {
    if (hardLink || !ctx.objects.capabilities.serverSideCopy || !ctx.options.verifyCopiedSizes) return reported
    return (await ctx.objects.head(copy.to, { signal: ioSignal }))?.size ?? -1
  }
  const inner = sharedAbortController()
  const onAbort = (): void => inner.abort(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  const recorder = new DoneRecorder(ctx, jobId, inner.signal, deps.onProgress)
  /** Files of a segment that are copied but not yet handed to the recorder. */
  const FLUSH_FILES = 64
  const items: { w: Work; copy: FileCopy }[] = []
  const left = new Map<Work, number>()
  const pending = new Map<Work, FileCopy[]>()
  for (const w of work) {
    left.set(w, w.copies.length)
    pending.set(w, [])
    for (const copy of w.copies) items.push({ w, copy })
  }
  let next = 0
  let failure: unknown
  const fail = (err: unknown): void => {
    if (failure !== undefined) return
    failure = signal.aborted ? abortError(signal) : err
    inner.abort(failure)
  }
  const record = (files: FileCopy[], segment?: PlannedSegment): void => {
    recorder.add(files, segment).catch(fail)
  }
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const { w, copy } = items[next++]
      try {
        const info = await deps.copySlots.add(() => {
          throwIfAborted(inner.signal)
          // A copy under way is not cut short when the job stops: an aborted request may
          // still complete on the server, after the rollback deleted its target.
          return ctx.objects.copy(copy.from, copy.to, { mode, signal: ioSignal, sizeBytes: sizeHint(copy) })
        })
        const size = await measured(copy, info.size)
        if (size !== copy.size) {
          throw new SnapshotError('CORRUPT', `copied ${copy.from} to ${copy.to}: ${size} bytes, the snapshot records ${copy.size}`)
        }
      } catch (err) {
        fail(err)
        return
      }
      const done = pending.get(w) as FileCopy[]
      done.push(copy)
      const n = (left.get(w) as number) - 1
      left.set(w, n)
      if (n === 0 || done.length >= FLUSH_FILES) {
        pending.set(w, [])
        record(done, n === 0 ? w.segment : undefined)
      }
    }
  }
  try {
    // Segments with nothing left to copy (a run stopped between its copies and its record) are only recorded.
    for (const w of work) if (w.copies.length === 0) record([], w.segment)
    await Promise.all(Array.from({ length: Math.min(deps.copySlots.concurrency, items.length) }, worker))
    await recorder.flushed().catch(fail)
    if (failure !== undefined) throw failure
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Step 3: registers the target segments (`flushed`) and counts the task complete, in one transaction. */
async function register(deps: CopyWorkerDeps, jobId: number, taskId: number, plan: readonly PlannedSegment[], signal: AbortSignal): Promise<void> {
  await deps.ctx.transactor.run(async (tx) => {
    const job = await runningJob(tx, jobId)
    const task = await readTask(tx, jobId, taskId)
    if (task === undefined || task.state === 'completed') return
    let rows = 0
    await bumpCollectionVersion(tx, job.collectionId)
    for (const p of plan) {
      writeSegment(tx, p.target)
      rows += p.target.numRows
    }
    writeTask(tx, { ...task, state: 'completed', reason: '' })
    writeJob(tx, { ...job, completedTasks: job.completedTasks + 1, restoredRows: job.restoredRows + rows })
  }, { signal })
}

/**
 * Runs task `taskId` of job `jobId` to completion. Resolves when it is done (or was
 * already); rejects with {@link JobStoppedError} when the job stopped running, with
 * `ABORTED` when `signal` fired, and with the failure otherwise. `ioSignal` (the manager
 * closing) also aborts object copies under way; `signal` alone (the job stopped) lets
 * them finish, so that nothing lands after a rollback.
 */
export async function runCopyTask(deps: CopyWorkerDeps, jobId: number, taskId: number, signal: AbortSignal, ioSignal?: AbortSignal): Promise<void> {
  const { ctx } = deps
  throwIfAborted(signal)
  const job = await readJobDirect(ctx.meta, jobId, { signal })
  if (job === undefined || job.state !== 'in_progress') throw new JobStoppedError(jobId, job?.state ?? 'removed')
  const raw = await ctx.meta.get(keys.restoreTask(jobId, taskId), { signal })
  if (raw === undefined) throw new SnapshotError('CORRUPT', `restore job ${jobId} has no task ${taskId}`)
  const stored = JSON.parse(raw) as TaskRecord
  if (stored.state === 'completed') return
  const source = await deps.sources.get(job, { signal })
  const segments = await source.segments(stored, { signal })
  const prepared = await prepare(deps, jobId, taskId, () => countTaskIds(segments), signal)
  if (prepared === undefined) return
  const { task, resumed } = prepared
  const plan = planTask(
    {
      job,
      sourceChannels: source.sourceChannels,
      first: task.first,
      idBase: task.idBase ?? 0,
      buildCount: task.buildCount ?? 0,
      now: ctx.now(),
    },
    segments,
  )
  const work: Work[] = resumed ? await remaining(deps, jobId, plan, signal) : plan.map((segment) => ({ segment, copies: segment.copies }))
  await copyAll(deps, jobId, work, signal, ioSignal)
  throwIfAborted(signal)
  await register(deps, jobId, taskId, plan, signal)
}
