import { SnapshotError } from '../errors.js'
import { keys } from '../meta/keys.js'
import { MAX_BATCH_OPS, type MetaStore } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { AbortOptions } from '../types.js'
import type { RestoreJobInfo, RestoreJobState } from './job-types.js'

/**
 * The durable records of restore jobs (`r/job/{jobId}`) and copy tasks
 * (`r/task/{jobId}/{taskId}`), and the pure functions over them. Both records stay
 * small whatever the snapshot's size: the source → target segment mapping is a
 * contiguous block of target IDs mapped by ordinal (the segment's index in the
 * snapshot's manifest list), and a task is an ordinal range.
 * @internal
 */

/** Progress of the clean-up of a failed or cancelled job. */
export type RollbackState = 'pending' | 'done'

/** `r/job/{jobId}`. @internal */
export interface JobRecord {
  jobId: number
  snapshotId: number
  snapshotName: string
  sourceCollectionId: number
  targetCollectionName: string
  /** ID of the target collection. */
  collectionId: number
  state: RestoreJobState
  reason: string
  createdAt: number
  /** When the job completed, or when the rollback of a failed or cancelled job finished. */
  finishedAt?: number
  /** Segments of the snapshot; target segment `ordinal` gets ID `segmentIdBase + ordinal`. */
  totalSegments: number
  totalBytes: number
  /** Row count of the snapshot; the restored segments must add up to it. */
  expectedRows: number
  /** First ID of the pre-allocated block of target segment IDs (0 when there are no segments). */
  segmentIdBase: number
  /** Segments per copy task, fixed when the job is accepted. */
  segmentsPerTask: number
  /** Copy tasks; written when the job leaves `pending`. */
  taskCount: number
  copiedSegments: number
  copiedBytes: number
  /** Tasks whose target segments are registered. */
  completedTasks: number
  /** Rows of the registered target segments. */
  restoredRows: number
  /** Source partition ID → target partition ID. */
  partitionMap: [source: number, target: number][]
  /** Channels of the target collection, by shard. */
  targetChannels: string[]
  /** Index definitions of the target collection (same IDs as the source's). */
  indexIds: number[]
  /** Set once the job failed or was cancelled: whether its target has been removed. */
  rollback?: RollbackState
}

/** State of a copy task. @internal */
export type TaskState = 'pending' | 'in_progress' | 'completed' | 'failed'

/** `r/task/{jobId}/{taskId}`: segments `first … first + count - 1` of the job. @internal */
export interface TaskRecord {
  jobId: number
  taskId: number
  first: number
  count: number
  /** Source segment IDs of the task's segments, in order. */
  segmentIds: number[]
  /**
   * Manifest owners of the task's segments, in order: with the segment IDs, they name the
   * manifests (so a running job needs no per-segment state in memory).
   */
  owners: number[]
  state: TaskState
  /** Why the task failed; '' otherwise. */
  reason: string
  /** Runs started; a task with `attempts > 0` checks what an earlier run already copied. */
  attempts: number
  /**
   * First of `buildCount + logIdCount` IDs allocated by the first run: target build IDs
   * (one per source build, in order of appearance), then log IDs for files without one.
   */
  idBase?: number
  /** Build IDs in the block. */
  buildCount?: number
  /** Log IDs in the block (after the build IDs). */
  logIdCount?: number
}

/** True for `completed`, `failed` and `cancelled`. */
export function isTerminal(state: RestoreJobState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled'
}

/** True when nothing more will happen to the job (completed, or failed/cancelled and rolled back). */
export function isFinished(job: JobRecord): boolean {
  return job.state === 'completed' || (isTerminal(job.state) && job.rollback === 'done')
}

/** True while the job may still write objects (running, or rolling back). */
export function mayWrite(job: JobRecord): boolean {
  return !isFinished(job)
}

/** `floor(100 × copied / total)`; 100 when there is nothing to copy. */
export function progressOf(job: Pick<JobRecord, 'copiedSegments' | 'totalSegments'>): number {
  if (job.totalSegments === 0) return 100
  return Math.min(100, Math.floor((100 * job.copiedSegments) / job.totalSegments))
}

/** The public view of a record at time `now`. */
export function toJobInfo(job: JobRecord, now: number): RestoreJobInfo {
  const info: RestoreJobInfo = {
    jobId: job.jobId,
    snapshotName: job.snapshotName,
    sourceCollectionId: job.sourceCollectionId,
    targetCollectionName: job.targetCollectionName,
    collectionId: job.collectionId,
    state: job.state,
    progress: job.state === 'completed' ? 100 : progressOf(job),
    reason: job.reason,
    timeCostMs: Math.max(0, (job.finishedAt ?? now) - job.createdAt),
    createdAt: job.createdAt,
    copiedSegments: job.copiedSegments,
    totalSegments: job.totalSegments,
    copiedBytes: job.copiedBytes,
    totalBytes: job.totalBytes,
  }
  if (job.finishedAt !== undefined) info.finishedAt = job.finishedAt
  return info
}

/** Segments of task `taskId` of a job: `[first, first + count)`. */
export function taskRange(job: Pick<JobRecord, 'segmentsPerTask' | 'totalSegments'>, taskId: number): { first: number; count: number } {
  const first = taskId * job.segmentsPerTask
  return { first, count: Math.max(0, Math.min(job.segmentsPerTask, job.totalSegments - first)) }
}

/** Number of tasks a job splits into. */
export function taskCountOf(job: Pick<JobRecord, 'segmentsPerTask' | 'totalSegments'>): number {
  return Math.ceil(job.totalSegments / job.segmentsPerTask)
}

/** `NOT_FOUND` ("restore job not found"). */
export function jobNotFound(jobId: unknown): SnapshotError {
  return new SnapshotError('NOT_FOUND', `restore job not found: ${String(jobId)}`)
}

/** Reads a job inside a transaction. */
export async function readJob(tx: MetaTxn, jobId: number): Promise<JobRecord | undefined> {
  return tx.getJson<JobRecord>(keys.restoreJob(jobId))
}

/** Reads a job outside a transaction. */
export async function readJobDirect(meta: MetaStore, jobId: number, options: AbortOptions = {}): Promise<JobRecord | undefined> {
  const raw = await meta.get(keys.restoreJob(jobId), options)
  return raw === undefined ? undefined : (JSON.parse(raw) as JobRecord)
}

/** Writes a job record in `tx`. */
export function writeJob(tx: MetaTxn, job: JobRecord): void {
  tx.putJson(keys.restoreJob(job.jobId), job)
}

/** Reads a task record inside a transaction. */
export async function readTask(tx: MetaTxn, jobId: number, taskId: number): Promise<TaskRecord | undefined> {
  return tx.getJson<TaskRecord>(keys.restoreTask(jobId, taskId))
}

/** Writes a task record in `tx`. */
export function writeTask(tx: MetaTxn, task: TaskRecord): void {
  tx.putJson(keys.restoreTask(task.jobId, task.taskId), task)
}

/**
 * Marks a job `failed` (or `cancelled`) in `tx` with its rollback pending. Returns the
 * updated record, or undefined when the job is already terminal (first failure wins).
 */
export function failJob(tx: MetaTxn, job: JobRecord, state: 'failed' | 'cancelled', reason: string): JobRecord | undefined {
  if (isTerminal(job.state)) return undefined
  const failed: JobRecord = { ...job, state, reason, rollback: 'pending' }
  writeJob(tx, failed)
  return failed
}

/** Thrown inside a worker when its job stopped running (failed, cancelled, removed); not a task failure. */
export class JobStoppedError extends Error {
  constructor(jobId: number, state: string) {
    super(`restore job ${jobId} is ${state}`)
    this.name = 'JobStoppedError'
  }
}

/** The number of records a batch may write on `meta` (at most `MAX_BATCH_OPS`), leaving room for a few others. */
export function chunkSize(meta: MetaStore, wanted = MAX_BATCH_OPS): number {
  return Math.max(1, Math.min(wanted, meta.capabilities.maxBatchOps, MAX_BATCH_OPS) - 8)
}
